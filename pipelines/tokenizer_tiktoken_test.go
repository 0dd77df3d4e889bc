package pipelines

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/tokenize"
)

// TestTokenizerTiktokenKeys: the recipe's tokenizer pattern and specials
// keys reach a tiktoken rank file (specials as a file beside the recipe).
func TestTokenizerTiktokenKeys(t *testing.T) {
	dir := t.TempDir()
	src, err := tokenize.Get("gpt2")
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for id := uint32(0); id < 50256; id++ {
		b, _ := src.TokenBytes(id)
		sb.WriteString(base64.StdEncoding.EncodeToString(b) + " " + strconv.Itoa(int(id)) + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "mine.tiktoken"), []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "specials.txt"), []byte("<|endoftext|> 50256\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(minimal, "  name: gpt2\n", "  name: mine.tiktoken\n  pattern: gpt2\n  specials: specials.txt\n", 1)
	r, err := ParseRecipe([]byte(y), dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := loadTokenizer(&Run{Recipe: r})
	if err != nil {
		t.Fatal(err)
	}
	if eot, _ := tok.EOT(); eot != 50256 || tok.RanksHash() != src.RanksHash() {
		t.Errorf("eot %d, hash equal to gpt2's: %v", eot, tok.RanksHash() == src.RanksHash())
	}
	r.Tokenizer.Pattern = ""
	if _, err := loadTokenizer(&Run{Recipe: r}); err == nil || !strings.Contains(err.Error(), "pattern") {
		t.Errorf("no pattern: %v", err)
	}
}
