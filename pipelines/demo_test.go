package pipelines

import (
	"context"
	"github.com/smelt-dev/smelt/ablate"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/trainer"
)

// TestDemoRecipeRealData runs the bundled demo recipe on real data: the
// first 60 of the web pages shipped in the go-trafilatura module and the
// public-domain books shipped in other modules smelt is built from, with
// a shorter training run. It skips when the module cache is unreachable.
func TestDemoRecipeRealData(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	if testing.Short() {
		t.Skip("real-data pipeline run")
	}
	data, _ := Bundled("demo")
	r, err := ParseRecipe(data, ".")
	if err != nil {
		t.Fatal(err)
	}
	web := r.Sources[0]
	pages, err := resolveGomod(web.Inputs[0])
	if err != nil {
		t.Skipf("go-trafilatura's pages are not reachable: %v", err)
	}
	files, _ := filepath.Glob(pages)
	if len(files) < 60 {
		t.Skipf("go-trafilatura's pages not in the module cache (%d found)", len(files))
	}
	for _, in := range r.Sources[1].Inputs {
		p, err := resolveGomod(in)
		if err != nil {
			t.Skipf("reference text not reachable: %v", err)
		}
		if _, err := os.Stat(p); err != nil {
			t.Skipf("reference text not in the module cache: %v", err)
		}
	}
	sort.Strings(files)
	web.Inputs = files[:60]
	// Keep the pages that pass the rules: the classifier's Pareto(9)
	// policy would leave too few of 60 pages to check the later steps.
	r.Classifier.Keep = "threshold:0"
	r.Train.Steps, r.Train.Warmup, r.Train.SampleTokens = 6, 1, 16
	// The demo's ablation, in a few steps and one seed.
	// (A few of 60 pages pass the heuristics: hold out half of them.)
	r.Ablate.Steps, r.Ablate.Warmup, r.Ablate.Seeds = 4, 1, []uint64{1}
	r.Ablate.Evals[0].HeldOut.Fraction = 0.5
	r.Ablate.Evals = r.Ablate.Evals[:1] // the pages; scoring the book is the slow part
	run, err := Open(filepath.Join(t.TempDir(), "demo"), r, OpenOptions{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.RunLocal(context.Background(), LocalOptions{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	if res, err := ablate.ReadResult(filepath.Join(run.Dir, "ablate")); err != nil || len(res.Arms) != 3 || res.Arms[0].Tokens <= res.Arms[1].Tokens {
		t.Errorf("the demo's ablation: %v %+v", err, res)
	}
	ing, err := shards.ReadStats(filepath.Join(run.Dir, "ingest-web"))
	if err != nil {
		t.Fatal(err)
	}
	if ing.In.Docs != 60 || ing.Out.Docs < 50 {
		t.Errorf("ingest: %d records, %d documents from 60 pages", ing.In.Docs, ing.Out.Docs)
	}
	flt, _ := shards.ReadStats(filepath.Join(run.Dir, "filter-web"))
	if flt.Dropped["lang/not_listed"].Docs == 0 || flt.Out.Docs == 0 {
		t.Errorf("filter: %d kept, drops %v", flt.Out.Docs, flt.Dropped)
	}
	tm, err := shards.ReadManifest(filepath.Join(run.Dir, "tokenize"))
	if err != nil {
		t.Fatal(err)
	}
	if tm.Tokenizer.VocabSize != 2048 || tm.Sources["books"].Rows != 3 || tm.Sources["web"].Tokens == 0 {
		t.Errorf("token shards: tokenizer %+v, sources %+v", tm.Tokenizer, tm.Sources)
	}
	// The books' text decodes back from the trained tokenizer's shards.
	sample, err := os.ReadFile(filepath.Join(run.Dir, "train", SampleFile))
	if err != nil || !strings.HasPrefix(string(sample), r.Train.Prompt) || len(sample) <= len(r.Train.Prompt)+1 {
		t.Errorf("no generated text from the prompt %q: %q %v", r.Train.Prompt, sample, err)
	}
	// Four books and a few pages: validated on held-out chunks, and the
	// checkpoint carries what generate and resume need.
	recs, err := trainer.ReadLog(filepath.Join(run.Dir, "train", "log.csv"))
	if err != nil || len(recs) != 6 || math.IsNaN(recs[5].ValLoss) {
		t.Fatalf("train log: %v, %v", recs, err)
	}
	ck, err := trainer.LoadCheckpoint(filepath.Join(run.Dir, "train", trainer.CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	if ck.Options.ValFraction != *r.Train.ValFraction || ck.Options.Data == "" || ck.TokenizerHash != tm.Tokenizer.RanksHash {
		t.Errorf("checkpoint options %+v, tokenizer hash %q", ck.Options, ck.TokenizerHash)
	}
	if tok, err := ck.LoadTokenizer(); err != nil || tok.RanksHash() != tm.Tokenizer.RanksHash {
		t.Errorf("the checkpoint's tokenizer: %v", err)
	}
}
