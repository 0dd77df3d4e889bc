package pipelines

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smelt-dev/smelt/ablate"
	"github.com/smelt-dev/smelt/shards"
)

const testAblate = `ablate:
  steps: 3
  batch_size: 2
  seeds: [1, 2]
  evals:
    - name: pages
      held_out: {from: filter-crawl, keep_dropped: [quality/], fraction: 0.1, seed: 3}
    - name: book
      inputs: [ref/book-0.txt]
      max_bytes: 3000
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
	t.Parallel() // issue 26 T1: independent of the package's other tests
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
	// One task per arm x seed, each on one CPU (a Slurm array's tasks).
	if st := run.Plan.Step(KindAblateTrain); st == nil || len(st.Tasks) != 5*2 || st.CPUs != 1 {
		t.Errorf("ablate-train step %+v: want 10 tasks of one CPU", st)
	} else if got := st.Tasks[3].Out; got != "ablate-train/heuristics/seed-2" {
		t.Errorf("task 3 writes %s, want arm heuristics seed 2", got)
	}
	// The book is scored on its first max_bytes, cut at a line end.
	capped, err := os.ReadFile(filepath.Join(run.Dir, KindAblateData, "evals", "book", "0-book-0.txt"))
	full, _ := os.ReadFile(filepath.Join(dir, "ref", "book-0.txt"))
	if err != nil || len(capped) == 0 || len(capped) > 3000 || len(full) <= 3000 || capped[len(capped)-1] != '\n' || !bytes.HasPrefix(full, capped) {
		t.Errorf("capped book: %d bytes of %d (%v)", len(capped), len(full), err)
	}
	if r := res.Arms[0].Runs[1]; r.Dir != filepath.Join(run.Dir, "ablate-train", "raw", "seed-2") || findSet(r.Evals, "book").Bytes > 3000 {
		t.Errorf("raw seed 2: %s, evals %+v", r.Dir, r.Evals)
	}
	table, err := os.ReadFile(filepath.Join(run.Dir, "ablate", ablate.TableFile))
	if err != nil || !strings.Contains(string(table), "pages loss") || !strings.Contains(string(table), "heuristics") {
		t.Errorf("table: %s %v", table, err)
	}
	for _, bad := range []string{
		strings.Replace(testAblate, "from: dedup\n      source: crawl", "from: nosuch", 1),
		strings.Replace(testAblate, "    - name: heuristics", "    - name: raw", 1),
		strings.Replace(testAblate, "fraction: 0.1", "fraction: 1.5", 1),
		strings.Replace(testAblate, "max_bytes: 3000", "max_bytes: -1", 1),
		strings.Replace(testAblate, "seed: 3}", "seed: 3}\n      max_bytes: 10", 1),
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

func findSet(es []ablate.EvalResult, set string) ablate.EvalResult {
	for _, e := range es {
		if e.Set == set {
			return e
		}
	}
	return ablate.EvalResult{}
}

// TestCapEvalFile: the first max bytes, cut after a line end; a file
// shorter than max whole; no whole line within max is an error.
func TestCapEvalFile(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(in, []byte("one\ntwo\nthree\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		max  int64
		want string
	}{{9, "one\ntwo\n"}, {10, "one\ntwo\n"}, {100, "one\ntwo\nthree\n"}, {4, "one\n"}} {
		out := filepath.Join(dir, "out.txt")
		if err := capEvalFile(in, out, c.max); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(out); string(got) != c.want {
			t.Errorf("max %d: %q, want %q", c.max, got, c.want)
		}
	}
	if err := capEvalFile(in, filepath.Join(dir, "x"), 3); err == nil {
		t.Error("3 bytes hold no whole line, but no error")
	}
}

// TestSlurmAblateArray: with the Slurm executor, a recipe's ablation
// submits its arm x seed models as one job array, a task per model, and
// writes the table the local executor writes. To stay cheap it runs the
// recipe locally, then has Slurm redo the models and the table.
func TestSlurmAblateArray(t *testing.T) {
	slurmAvailable(t)
	if raceEnabled {
		// 600 s under -race at a load of 13 on two cores, most of it the
		// recipe's local run, which TestRecipeAblate checks under -race;
		// .ci/run runs the Slurm tests again without -race.
		t.Skip("too slow under -race; .ci/run runs it without -race")
	}
	dir := t.TempDir()
	writeCorpus(t, dir, 4, 50)
	recipe := filepath.Join(dir, "recipe.yaml")
	if err := os.WriteFile(recipe, []byte(testRecipe(false)+testAblate), 0o644); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(dir, "run")
	run := runRecipe(t, recipe, runDir, 2)
	want, err := os.ReadFile(filepath.Join(runDir, "ablate", ablate.ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{KindAblateTrain, "ablate"} {
		for _, tk := range run.Plan.Step(step).Tasks {
			if err := run.removeTask(step, tk); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sub, err := run.SubmitSlurm(ctx, testSlurmOptions())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(sub.Order, ",") != KindAblateTrain+",ablate" {
		t.Errorf("submitted %v, want the models' array and the table", sub.Order)
	}
	script, _ := os.ReadFile(filepath.Join(runDir, StateDir, "slurm", KindAblateTrain+".sh"))
	if !strings.Contains(string(script), "'--step' '"+KindAblateTrain+"'") || !strings.Contains(string(script), `"$SLURM_ARRAY_TASK_ID"`) {
		t.Errorf("the models' script does not run one model per array index:\n%s", script)
	}
	for rank := range run.Plan.Step(KindAblateTrain).Tasks {
		if _, err := os.Stat(run.LogPath(KindAblateTrain, rank)); err != nil {
			t.Errorf("model %d: no array task log: %v", rank, err)
		}
	}
	got, err := os.ReadFile(filepath.Join(runDir, "ablate", ablate.ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("ablation.json differs between the Slurm and the local executor:\n%s\nvs\n%s", got, want)
	}
}
