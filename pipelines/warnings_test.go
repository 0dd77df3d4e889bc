package pipelines

import (
	"strings"
	"testing"
)

// TestRecipeWarnings: each silent default draws one warning naming its
// line, and saying it explicitly silences it.
func TestRecipeWarnings(t *testing.T) {
	base := `name: w
sources:
  - name: crawl
    inputs: [.]
    weight: 1
%s
  - name: ref
    inputs: [.]
    reference: true
dedup:
  minhash: true
%s
tokenizer: {name: gpt2}
`
	cases := []struct {
		filter, scope string
		want          []string
	}{
		{"", "", []string{"line 3: source crawl has no filter: key", "line 10: dedup scope not set"}},
		{"    filter: {rules: [url, c4]}", "  scope: global", []string{"line 6: source crawl: the url rule has no block list"}},
		{"    filter: {rules: [url], url: {domains: [bad.example]}}", "  scope: source", nil},
		{"    filter: {rules: [c4], url: {substrings: [casino]}}", "  scope: source", nil},
	}
	for _, c := range cases {
		y := strings.Replace(strings.Replace(base, "%s\n", c.filter+"\n", 1), "%s\n", c.scope+"\n", 1)
		r, err := ParseRecipe([]byte(y), t.TempDir())
		if err != nil {
			t.Fatalf("%v\n%s", err, y)
		}
		got := r.Warnings()
		if len(got) != len(c.want) {
			t.Errorf("filter %q scope %q: warnings %q, want %d", c.filter, c.scope, got, len(c.want))
			continue
		}
		for i, w := range c.want {
			if !strings.HasPrefix(got[i], w) {
				t.Errorf("warning %d = %q, want it to start %q", i, got[i], w)
			}
		}
	}
}

// TestBundledRecipeWarnings: fineweb.yaml's url rule has no list (smelt
// ships none) and says so at run start; gpt3.yaml's curated sources are
// unfiltered and each says so; no bundled recipe leaves the scope unsaid.
func TestBundledRecipeWarnings(t *testing.T) {
	want := map[string][]string{
		"fineweb": {"source cc_main: the url rule has no block list"},
		"gpt3":    {"source webtext2 has no filter", "source books1 has no filter", "source books2 has no filter", "source wikipedia has no filter"},
		"demo":    {"source books has no filter"},
	}
	for name, ws := range want {
		data, _ := Bundled(name)
		r, err := ParseRecipe(data, "/base")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := r.Warnings()
		if len(got) != len(ws) {
			t.Errorf("%s: warnings %q, want %q", name, got, ws)
			continue
		}
		for i, w := range ws {
			if !strings.Contains(got[i], w) {
				t.Errorf("%s: warning %q, want %q", name, got[i], w)
			}
		}
	}
}
