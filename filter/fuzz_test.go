package filter

import (
	"slices"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

// FuzzRules feeds arbitrary text to every rule, the pipeline and the
// feature hasher: nothing may panic, every reason must be declared, and C4's
// removed byte count must match the text it returns.
func FuzzRules(f *testing.F) {
	for _, s := range []string{"", "\n\n", "a b c. d e f!", "\xff\xfe", "• x\n• y\n", "[1] {x} lorem ipsum",
		strings.Repeat("la ", 50), "日本語。\r\n\r\nтекст..."} {
		f.Add(s)
	}
	rules := allRules()
	m := &Model{Bits: 10, Weights: make([]float32, 1<<10)}
	f.Fuzz(func(t *testing.T, text string) {
		d := &shards.Document{ID: text, Text: text, URL: text}
		for _, r := range rules {
			if reason, _ := r.Check(d); reason != "" && !slices.Contains(r.Reasons(), reason) {
				t.Fatalf("%s: undeclared reason %q", r.Name(), reason)
			}
		}
		out, removed, reason, _ := DefaultC4().Modify(d)
		if reason == "" && removed != len(text)-len(out) {
			t.Fatalf("c4 removed %d, text shrank by %d", removed, len(text)-len(out))
		}
		if s := m.Score(text); s < 0 || s > 1 {
			t.Fatalf("score %v", s)
		}
		p := Pipeline{Rules: rules}
		c := *d
		p.Apply(&c)
	})
}
