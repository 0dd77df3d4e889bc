package pipelines

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/ablate"
	"github.com/smelt-dev/smelt/shards"
)

const testAblate = `ablate:
  steps: 3
  batch_size: 2
  seeds: [1, 2]
  evals:
    - name: pages
      held_out: {from: filter-crawl, keep_dropped: [quality/], fraction: 0.2, seed: 3}
    - name: book
      inputs: [ref/book-0.txt]
  arms:
    - name: raw
      from: ingest-crawl
    - name: heuristics
      from: filter-crawl
      keep_dropped: [quality/]
    - name: threshold
      from: filter-crawl
      keep_dropped: [quality/]
      min_quality: 0.5
    - name: final
      from: dedup
      source: crawl
    - name: mix
      sources:
        - {from: dedup, source: crawl, weight: 1}
        - {from: ingest-books, weight: 1}
`

// TestRecipeAblate runs a recipe with an ablate: section: held-out pages
// (a hash of their id) and a file as eval sets, arms from the ingest,
// filter (before the classifier, and at a classifier threshold, from the
// recorded scores) and dedup steps and a mix. The held-out pages are in
// the raw arm's data and must be removed from it; the table is written.
func TestRecipeAblate(t *testing.T) {
	dir := t.TempDir()
	writeCorpus(t, dir, 4, 50)
	path := filepath.Join(dir, "recipe.yaml")
	if err := os.WriteFile(path, []byte(testRecipe(false)+testAblate), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := LoadRecipe(path)
	if err != nil {
		t.Fatal(err)
	}
	run, err := Open(filepath.Join(dir, "run"), r, OpenOptions{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.RunLocal(context.Background(), LocalOptions{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	res, err := ablate.ReadResult(filepath.Join(run.Dir, "ablate"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Arms) != 5 || len(res.Evals) != 2 {
		t.Fatalf("%d arms, %d evals", len(res.Arms), len(res.Evals))
	}
	held := res.EvalTokens[0]
	raw, heur, thr, final := res.Arms[0], res.Arms[1], res.Arms[2], res.Arms[3]
	if held == 0 || raw.Sources[0].Contaminated["pages"] == 0 || heur.Sources[0].Contaminated["pages"] == 0 {
		t.Errorf("held-out pages (%d tokens) not removed from the raw and heuristics arms: %+v %+v", held, raw.Sources[0], heur.Sources[0])
	}
	if !(raw.Tokens > heur.Tokens && heur.Tokens > thr.Tokens && heur.Tokens >= final.Tokens) || thr.Sources[0].Unselected == 0 {
		t.Errorf("tokens raw %d, heuristics %d, threshold %d (%d unselected), final %d", raw.Tokens, heur.Tokens, thr.Tokens, thr.Sources[0].Unselected, final.Tokens)
	}
	if w := res.Arms[4].Weights; len(w) != 2 || w[0] != 0.5 {
		t.Errorf("mix arm weights %v", w)
	}
	table, err := os.ReadFile(filepath.Join(run.Dir, "ablate", ablate.TableFile))
	if err != nil || !strings.Contains(string(table), "pages loss") || !strings.Contains(string(table), "heuristics") {
		t.Errorf("table: %s %v", table, err)
	}
	for _, bad := range []string{
		strings.Replace(testAblate, "from: dedup\n      source: crawl", "from: nosuch", 1),
		strings.Replace(testAblate, "    - name: heuristics", "    - name: raw", 1),
		strings.Replace(testAblate, "fraction: 0.2", "fraction: 1.5", 1),
	} {
		if err := os.WriteFile(path, []byte(testRecipe(false)+bad), 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := LoadRecipe(path)
		if err == nil {
			_, err = Open(filepath.Join(dir, "bad"), r, OpenOptions{Version: "test"})
		}
		if err == nil {
			t.Errorf("bad ablate section accepted:\n%s", bad)
		}
	}
}

// TestAblateSelection: a selection takes kept documents, dropped ones only
// for the reasons given, at the classifier threshold, and leaves out
// documents whose annotate-mode signals match drop_signals.
func TestAblateSelection(t *testing.T) {
	q := 0.5
	sel, key := selection("web", []string{"quality/"}, &q, []string{"gopher/"})
	if sel == nil || key == "" {
		t.Fatal("no selection")
	}
	for _, c := range []struct {
		d    shards.Document
		want bool
	}{
		{shards.Document{Source: "web", Quality: 0.6, HasQuality: true}, true},
		{shards.Document{Source: "books", Quality: 0.6, HasQuality: true}, false},
		{shards.Document{Source: "web", Quality: 0.4, HasQuality: true}, false},
		{shards.Document{Source: "web", Quality: 0.6}, false},
		{shards.Document{Source: "web", Quality: 0.6, HasQuality: true, Drop: &shards.Drop{Reason: "quality/pareto"}}, true},
		{shards.Document{Source: "web", Quality: 0.6, HasQuality: true, Drop: &shards.Drop{Reason: "c4/lorem_ipsum"}}, false},
		{shards.Document{Source: "web", Quality: 0.6, HasQuality: true, Meta: `{"signals":{"gopher/too_few_words":"3"}}`}, false},
		{shards.Document{Source: "web", Quality: 0.6, HasQuality: true, Meta: `{"signals":{"c4/javascript":"1"}}`}, true},
	} {
		if got := sel(&c.d); got != c.want {
			t.Errorf("%+v: selected %v, want %v", c.d, got, c.want)
		}
	}
	if s, _ := selection("", nil, nil, nil); s != nil {
		t.Error("an empty selection filters")
	}
}
