package trainer

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/tokenize"
)

// TestCheckpointTiktokenPattern (issue 25): a checkpoint's tokenizer from a
// tiktoken rank file given with its own pattern and specials reloads with
// them: the same ids and ranks hash, where the rank file alone is refused.
func TestCheckpointTiktokenPattern(t *testing.T) {
	var sb strings.Builder
	for i := 0; i < 256; i++ {
		fmt.Fprintf(&sb, "%s %d\n", base64.StdEncoding.EncodeToString([]byte{byte(i)}), i)
	}
	for i, m := range []string{"th", "the", "in", "er", "12"} {
		fmt.Fprintf(&sb, "%s %d\n", base64.StdEncoding.EncodeToString([]byte(m)), 256+i)
	}
	path := filepath.Join(t.TempDir(), "tiny.tiktoken")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// Digits one by one: "12" never merges, which a wrong pattern would.
	o := tokenize.Options{Pattern: `\p{N}|[^\p{N}]+`, Specials: "<|end|>=300"}
	tok, err := tokenize.Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	hash, file, data, err := TokenizerInfo(tok, path)
	if err != nil {
		t.Fatal(err)
	}
	ck := &Checkpoint{Tokenizer: tok.Name(), TokenizerHash: hash, TokenizerFile: file, TokenizerData: data}
	back, err := ck.LoadTokenizer()
	if err != nil {
		t.Fatal(err)
	}
	text := "the thinner 12 in 2024<|end|>there"
	want, err := tok.Encode(text, tokenize.AllSpecial, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := back.Encode(text, tokenize.AllSpecial, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) || slices.Contains(want, 260) || !slices.Contains(want, 300) {
		t.Errorf("reloaded ids %v, want %v (no 260 for \"12\", 300 for <|end|>)", got, want)
	}
	if _, err := tokenize.Load(path); err == nil {
		t.Error("the rank file alone loaded: the test would not show the pattern travels")
	}
}
