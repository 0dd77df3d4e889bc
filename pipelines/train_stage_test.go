package pipelines

import (
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/trainer"
)

// TestRecipeValFraction: an explicit val_fraction 0 stays 0 (no split);
// unset, it is 0.01.
func TestRecipeValFraction(t *testing.T) {
	for _, c := range []struct {
		line string
		want float64
	}{{"", 0.01}, {"  val_fraction: 0\n", 0}, {"  val_fraction: 0.2\n", 0.2}} {
		r, err := ParseRecipe([]byte(testRecipe(true)+c.line), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if got := *r.Train.ValFraction; got != c.want {
			t.Errorf("%q: val_fraction %v, want %v", c.line, got, c.want)
		}
	}
	if _, err := ParseRecipe([]byte(testRecipe(true)+"  val_fraction: 1\n"), t.TempDir()); err == nil || !strings.Contains(err.Error(), "val_fraction") {
		t.Fatalf("val_fraction 1 accepted: %v", err)
	}
}

// TestRecipeTrainEvalKeys: a recipe's train step takes batch_tokens,
// decay_steps, eval sets, eval_every and keep_checkpoints; the run's MFU
// is measured against a real peak (at most 100%, where a fixed 1e9 FLOP/s
// gave up to 1,963%), its log has the eval columns and its stats the
// scores and passes.
func TestRecipeTrainEvalKeys(t *testing.T) {
	dir := t.TempDir()
	writeCorpus(t, dir, 2, 30)
	crawl, _ := filepath.Glob(filepath.Join(dir, "crawl", "*.jsonl"))
	recipe := strings.Replace(testRecipe(true), "  steps: 4\n", "  steps: 8\n", 1) +
		"  batch_tokens: 64\n  decay_steps: 6\n  val_every: 4\n  keep_checkpoints: 2\n  eval:\n    - {name: crawl_text, paths: [" + crawl[0] + "]}\n"
	path := filepath.Join(dir, "recipe.yaml")
	os.WriteFile(path, []byte(recipe), 0o644)
	run := runRecipe(t, path, filepath.Join(dir, "run"), 2)
	out := filepath.Join(run.Dir, "train")
	ck, err := trainer.LoadCheckpoint(filepath.Join(out, trainer.CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	if o := ck.Options; o.BatchTokens != 64 || o.DecaySteps != 6 || len(o.Eval) != 1 || o.KeepCheckpoints != 2 {
		t.Fatalf("options %+v", o)
	}
	recs, err := trainer.ReadLog(filepath.Join(out, "log.csv"))
	if err != nil || len(recs) != 8 {
		t.Fatalf("log: %d rows, %v", len(recs), err)
	}
	for _, r := range recs {
		if !(r.MFU > 0 && r.MFU <= 1) {
			t.Fatalf("step %d: MFU %v", r.Step, r.MFU)
		}
	}
	if v, ok := recs[3].Evals["eval/crawl_text"]; !ok || !(v > 0) || math.IsNaN(recs[3].ValLoss) {
		t.Fatalf("step 4 scores %v, val %v", recs[3].Evals, recs[3].ValLoss)
	}
	if kept, _ := filepath.Glob(filepath.Join(out, "checkpoint-*.bin")); len(kept) != 2 {
		t.Fatalf("kept %v", kept)
	}
	st, err := shards.ReadStats(out)
	if err != nil {
		t.Fatal(err)
	}
	names := strings.Join(slices.Sorted(maps.Keys(st.Metrics)), " ")
	for _, want := range []string{"train/eval/crawl_text/bpb", "train/passes/crawl", "train/eval/val"} {
		if !strings.Contains(names, want) {
			t.Fatalf("stats lack %s: %s", want, names)
		}
	}
	if _, err := ParseRecipe([]byte(testRecipe(true)+"  batch_tokens: 50\n"), dir); err == nil || !strings.Contains(err.Error(), "batch_tokens") {
		t.Fatalf("batch_tokens not a multiple accepted: %v", err)
	}
}
