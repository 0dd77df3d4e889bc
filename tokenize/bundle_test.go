package tokenize

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPortableTiktoken: Llama 3's tiktoken tokenizer.model loaded with its
// pattern (by name, and as a regular expression only the general path runs)
// and its tokenizer_config.json specials; its Portable form, loaded by Load
// alone, gives the same ids on the hard cases and real documents, the same
// ranks hash, name and default end-of-text token. The rank file alone is
// refused, so without the bundle a checkpoint could not be read back.
func TestPortableTiktoken(t *testing.T) {
	model, _ := llama3Tiktoken(t)
	config := filepath.Join(filepath.Dir(hfPath("llama3")), "tokenizer_config.json")
	n := 200
	if raceEnabled {
		n = 30
	}
	texts := append(hardCases(), realDocs(t, n)...)
	texts = append(texts, "<|begin_of_text|>Hi<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nx<|end_of_text|>")
	if _, err := Load(model); err == nil || !strings.Contains(err.Error(), "--pattern") {
		t.Fatalf("the rank file alone: %v, want a refusal asking for --pattern", err)
	}
	pats := []string{"llama3", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+|x"}
	if raceEnabled {
		pats = pats[:1] // the race detector's time: the named pattern
	}
	for _, pat := range pats {
		t.Run(pat[:min(len(pat), 6)], func(t *testing.T) {
			orig, err := Open(model, Options{Pattern: pat, Specials: config})
			if err != nil {
				t.Fatal(err)
			}
			name, data, err := orig.Portable(model)
			if err != nil {
				t.Fatal(err)
			}
			if name != filepath.Base(name) || !strings.HasSuffix(name, ".smelt-tiktoken.json") {
				t.Fatalf("portable name %q", name)
			}
			p := filepath.Join(t.TempDir(), name)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			back, err := Load(p)
			if err != nil {
				t.Fatal(err)
			}
			if back.RanksHash() != orig.RanksHash() || back.Name() != orig.Name() {
				t.Errorf("reloaded %s %s, want %s %s", back.Name(), back.RanksHash(), orig.Name(), orig.RanksHash())
			}
			e1, err1 := orig.WithEOS("")
			e2, err2 := back.WithEOS("")
			if err1 != nil || err2 != nil {
				t.Fatalf("default end-of-text: %v, reloaded %v", err1, err2)
			}
			id1, ok1 := e1.EOT()
			id2, ok2 := e2.EOT()
			if id1 != id2 || ok1 != ok2 || !ok1 {
				t.Errorf("default end-of-text %d %v, reloaded %d %v", id1, ok1, id2, ok2)
			}
			bad := 0
			for i, s := range texts {
				a, err := orig.Encode(s, AllSpecial, nil)
				if err != nil {
					t.Fatal(err)
				}
				b, err := back.Encode(s, AllSpecial, nil)
				if err != nil {
					t.Fatal(err)
				}
				if d := firstDiff(a, b); d < len(a) || d < len(b) {
					if bad++; bad <= 3 {
						t.Errorf("text %d %q: at %d: reloaded %v, original %v", i, clipText(s, d), d, window(b, d), window(a, d))
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d texts differ after the round trip", bad, len(texts))
			}
		})
	}
}
