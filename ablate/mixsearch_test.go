package ablate

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/smelt-dev/smelt/internal/testutil"
)

// TestRidgeRecoversCoefficients fits noiseless data made from known
// coefficients.
func TestRidgeRecoversCoefficients(t *testing.T) {
	want := []float64{4, 5, 6, -1, 2, 0.5}
	r := rand.New(rand.NewPCG(1, 2))
	var X [][]float64
	var y []float64
	for k := 0; k < 20; k++ {
		f := features(dirichlet(r, 3))
		X, y = append(X, f), append(y, dot(want, f))
	}
	got, err := ridge(X, y, 1e-12)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-4 {
			t.Fatalf("coef %d: got %v, want %v", i, got, want)
		}
	}
}

// TestMixSearchBeatsUniform searches the mix of three sources of clearly
// different quality for held-out Tom Sawyer pages: the book itself, the
// book with its words shuffled, and random letters. The proposed weights
// must give a lower held-out loss than uniform weights for every seed.
func TestMixSearchBeatsUniform(t *testing.T) {
	testutil.Thorough(t)
	if raceEnabled {
		t.Skip("trains 14 models: too slow under -race")
	}
	ctx := context.Background()
	root := t.TempDir()
	docs := tomSawyer(t)
	writeDocs(t, filepath.Join(root, "all"), docs)
	if _, _, err := Split(ctx, SplitOptions{Inputs: []string{filepath.Join(root, "all")}, Fraction: 0.1, Seed: 7,
		Out: filepath.Join(root, "clean"), HeldOut: filepath.Join(root, "held")}); err != nil {
		t.Fatal(err)
	}
	writeDocs(t, filepath.Join(root, "shuffled"), shuffled(docs, 3))
	writeDocs(t, filepath.Join(root, "noise"), noise(docs, 4))
	tok, tokPath := bpe(t, root, 512, docs)
	cfg := Config{Out: filepath.Join(root, "search"), Tokenizer: tok, TokenizerPath: tokPath, Model: "tiny",
		Steps: 300, BatchSize: 8, LR: 3e-3, Warmup: 20, Seeds: []uint64{1, 2}, Workers: 1, Parallel: 2,
		Evals: []EvalSet{{Name: "pages", Paths: []string{filepath.Join(root, "held")}}},
		Log:   func(s string) { t.Log(s) }}
	var srcs []Source
	for _, n := range []string{"clean", "shuffled", "noise"} {
		srcs = append(srcs, Source{Name: n, Dirs: []string{filepath.Join(root, n)}})
	}
	res, err := MixSearch(ctx, cfg, srcs, SearchOptions{Proxies: 10, Seed: 5, Candidates: 20000})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("coef %v (%v), fit rmse %.4f", res.Coef, res.Terms, res.FitRMSE)
	t.Logf("proposed %s: %.4f [%.4f, %.4f] (predicted %.4f); uniform: %.4f [%.4f, %.4f] (predicted %.4f); blend %q",
		fmtWeights(res.Proposed.Weights), res.Proposed.Loss, res.Proposed.Min, res.Proposed.Max, res.Proposed.Predicted,
		res.Uniform.Loss, res.Uniform.Min, res.Uniform.Max, res.Uniform.Predicted, res.Blend)
	if !(res.Proposed.Max < res.Uniform.Min) {
		t.Errorf("proposed weights %v: loss %.4f..%.4f, not better than uniform's %.4f..%.4f beyond the seed spread",
			res.Proposed.Weights, res.Proposed.Min, res.Proposed.Max, res.Uniform.Min, res.Uniform.Max)
	}
	if w := res.Proposed.Weights; !(w[0] > w[1] && w[0] > w[2]) {
		t.Errorf("proposed weights %v: want the clean book weighted most", w)
	}
}
