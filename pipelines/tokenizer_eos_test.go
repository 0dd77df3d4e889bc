package pipelines

import (
	"strings"
	"testing"
)

// TestTokenizerEOSKeys: the recipe's tokenizer eos and bos keys reach the
// run's tokenizer, and an unknown token is refused naming it.
func TestTokenizerEOSKeys(t *testing.T) {
	y := strings.Replace(minimal, "  name: gpt2\n", "  name: cl100k_base\n  eos: <|endofprompt|>\n  bos: <|fim_prefix|>\n", 1)
	r, err := ParseRecipe([]byte(y), "/base")
	if err != nil {
		t.Fatal(err)
	}
	if r.Tokenizer.EOS != "<|endofprompt|>" || r.Tokenizer.BOS != "<|fim_prefix|>" {
		t.Fatalf("tokenizer %+v", r.Tokenizer)
	}
	tok, err := loadTokenizer(&Run{Recipe: r})
	if err != nil {
		t.Fatal(err)
	}
	if eot, _ := tok.EOT(); eot != 100276 {
		t.Errorf("eot %d, want <|endofprompt|> 100276", eot)
	}
	if bos, ok := tok.BOS(); !ok || bos != 100258 {
		t.Errorf("bos %d %v, want <|fim_prefix|> 100258", bos, ok)
	}
	r.Tokenizer.EOS = "<|nope|>"
	if _, err := loadTokenizer(&Run{Recipe: r}); err == nil || !strings.Contains(err.Error(), "<|nope|>") {
		t.Errorf("unknown eos: %v", err)
	}
}
