package ablate

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

// TestRunSmall runs the whole orchestration with models of a few steps
// (fast enough under -race): two arms, one a mix with a selection, two
// seeds, an eval set given as a text file that one arm contains. It checks
// the decontamination count, the selection, the files written, the passes
// and that a second run reuses the models.
func TestRunSmall(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	var a, b []*shards.Document
	for i := 0; i < 40; i++ {
		a = append(a, &shards.Document{ID: fmt.Sprintf("a%02d", i), Source: "a", Text: strings.Repeat(fmt.Sprintf("the cat number %d sat on the mat and looked at the dog. ", i), 4)})
		b = append(b, &shards.Document{ID: fmt.Sprintf("b%02d", i), Source: "b", Text: strings.Repeat(fmt.Sprintf("a dog called %d ran in the park after a ball all day. ", i), 4), Quality: float64(i) / 40, HasQuality: true})
	}
	writeDocs(t, filepath.Join(root, "a"), a)
	writeDocs(t, filepath.Join(root, "b"), b)
	eval := filepath.Join(root, "eval.txt")
	// Documents a03 and a04 share 13-grams with the eval text.
	if err := os.WriteFile(eval, []byte(a[3].Text+"\n"+a[4].Text), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, tokPath := bpe(t, root, 300, append(a, b...))
	cfg := Config{Out: filepath.Join(root, "out"), Tokenizer: tok, TokenizerPath: tokPath, Model: "tiny",
		Steps: 3, BatchSize: 2, SeqLen: 16, Seeds: []uint64{1, 2}, Workers: 2, Parallel: 3,
		Evals: []EvalSet{{Name: "held", Paths: []string{eval}}}}
	arms := []Arm{
		{Name: "a", Sources: []Source{{Name: "a", Dirs: []string{filepath.Join(root, "a")}}}},
		{Name: "mix", Sources: []Source{
			{Name: "a", Dirs: []string{filepath.Join(root, "a")}, Weight: 1},
			{Name: "b", Dirs: []string{filepath.Join(root, "b")}, Weight: 3, SelectKey: "q0.5",
				Select: func(d *shards.Document) bool { return d.Quality >= 0.5 }},
		}},
	}
	res, err := Run(ctx, cfg, arms)
	if err != nil {
		t.Fatal(err)
	}
	pa := res.Arms[0].Sources[0]
	if pa.Docs != 40 || pa.Removed != 2 || pa.Contaminated["held"] != 2 {
		t.Errorf("arm a: %d docs, %d removed (%v), want 40 and 2 by held", pa.Docs, pa.Removed, pa.Contaminated)
	}
	pb := res.Arms[1].Sources[1]
	if pb.Unselected != 20 || pb.Removed != 0 {
		t.Errorf("source b at quality >= 0.5: %d unselected, %d removed; want 20 and 0", pb.Unselected, pb.Removed)
	}
	if w := res.Arms[1].Weights; w[0] != 0.25 || w[1] != 0.75 {
		t.Errorf("mix weights %v, want [0.25 0.75]", w)
	}
	seen := int64(3 * 2 * 16)
	if res.Arms[0].TokensSeen != seen || res.Arms[0].Passes != float64(seen)/float64(pa.Tokens) {
		t.Errorf("tokens seen %d passes %v (arm tokens %d)", res.Arms[0].TokensSeen, res.Arms[0].Passes, pa.Tokens)
	}
	for _, arm := range res.Arms {
		for _, r := range arm.Runs {
			if len(r.Evals) != 1 || r.Evals[0].Tokens == 0 || !(r.Evals[0].LossNats > 0) {
				t.Errorf("arm %s seed %d: evals %+v", arm.Name, r.Seed, r.Evals)
			}
			if _, err := os.Stat(filepath.Join(r.Dir, "checkpoint.bin")); err != nil {
				t.Error(err)
			}
		}
	}
	for _, f := range []string{ResultFile, TableFile, "evals.idx"} {
		if _, err := os.Stat(filepath.Join(cfg.Out, f)); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(res.Table(), "a: 2 documents removed for sharing a 13-gram with an eval set") {
		t.Errorf("table does not show the decontamination:\n%s", res.Table())
	}
	again, err := Run(ctx, cfg, arms)
	if err != nil {
		t.Fatal(err)
	}
	if again.Table() != res.Table() {
		t.Errorf("rerun differs:\n%s\n%s", again.Table(), res.Table())
	}
	for _, bad := range [][]Arm{nil, {{Name: "x y", Sources: arms[0].Sources}}, {arms[0], arms[0]}} {
		if _, err := Run(ctx, cfg, bad); err == nil {
			t.Errorf("arms %v accepted", bad)
		}
	}
}

// TestMixSearchSmall runs the mixture search's machinery with models of a
// few steps (fast enough under -race): proxies on the simplex, a fit, a
// proposal on the simplex, the validation runs, mix.yaml readable as a
// smelt mix file, and the Megatron blend string.
func TestMixSearchSmall(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	var all []*shards.Document
	var srcs []Source
	for s, word := range []string{"cat", "dog", "fish"} {
		var docs []*shards.Document
		for i := 0; i < 20; i++ {
			docs = append(docs, &shards.Document{ID: fmt.Sprintf("%s%02d", word, i), Text: strings.Repeat(fmt.Sprintf("the %s number %d swam far. ", word, i*s), 5)})
		}
		writeDocs(t, filepath.Join(root, word), docs)
		all = append(all, docs...)
		srcs = append(srcs, Source{Name: word, Dirs: []string{filepath.Join(root, word)}})
	}
	eval := filepath.Join(root, "eval.jsonl")
	if err := os.WriteFile(eval, []byte(`{"text": "the cat sat and the dog ran."}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, tokPath := bpe(t, root, 280, all)
	cfg := Config{Out: filepath.Join(root, "out"), Tokenizer: tok, TokenizerPath: tokPath, Model: "tiny",
		Steps: 2, BatchSize: 2, SeqLen: 16, Seeds: []uint64{1, 2}, Workers: 2, Parallel: 2,
		Evals: []EvalSet{{Name: "e", Paths: []string{eval}}}}
	if _, err := MixSearch(ctx, cfg, srcs, SearchOptions{Proxies: 5}); err == nil {
		t.Error("5 proxies for 6 terms accepted")
	}
	res, err := MixSearch(ctx, cfg, srcs, SearchOptions{Proxies: 8, Seed: 1, Candidates: 1000, TopK: 10})
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, w := range res.Proposed.Weights {
		if w < 0 {
			t.Errorf("negative weight %v", res.Proposed.Weights)
		}
		sum += w
	}
	if math.Abs(sum-1) > 1e-9 || len(res.Proxies) != 8 || len(res.Coef) != 6 {
		t.Errorf("proposal %v (sum %v), %d proxies, %d coefficients", res.Proposed.Weights, sum, len(res.Proxies), len(res.Coef))
	}
	if !(res.Uniform.Loss > 0 && res.Proposed.Loss > 0 && res.Proposed.Min <= res.Proposed.Loss && res.Proposed.Loss <= res.Proposed.Max) {
		t.Errorf("validation: proposed %+v uniform %+v", res.Proposed, res.Uniform)
	}
	m, err := shards.LoadMix(res.MixFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Sources) != 3 || m.Sources[0].Name != "cat" {
		t.Errorf("mix file sources %+v", m.Sources)
	}
	if f := strings.Fields(res.Blend); len(f) != 6 || f[1] != "cat" || f[3] != "dog" || f[5] != "fish" {
		t.Errorf("blend %q", res.Blend)
	}
	for _, f := range []string{"mixsearch.json", "blend.txt", "mix.yaml"} {
		if _, err := os.Stat(filepath.Join(cfg.Out, f)); err != nil {
			t.Error(err)
		}
	}
}
