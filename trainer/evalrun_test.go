package trainer

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
)

// shakespeareParas is Tiny Shakespeare's paragraphs in [from, to) bytes.
func shakespeareParas(t *testing.T, from, to int) []string {
	t.Helper()
	var out []string
	for _, p := range strings.Split(shakespeare(t)[from:to], "\n\n") {
		if strings.TrimSpace(p) != "" {
			out = append(out, p)
		}
	}
	return out
}

// TestTrainEvalMatchesValidation trains through Train on token shards with
// a held-out split and a text eval set, keeping step-numbered checkpoints:
// smelt eval's scoring (Evaluate) of the held-out split from the final
// checkpoint equals the run's last validation loss, per source too, and
// of the eval set the run's last eval/NAME column; log.csv has the score
// columns; MFU stays at or below 100% even against a peak far too low.
func TestTrainEvalMatchesValidation(t *testing.T) {
	dir := t.TempDir()
	tokPath, tok := evalTokenizer(t, dir, shakespeare(t)[:200<<10], 300)
	play, sonnet := filepath.Join(dir, "play"), filepath.Join(dir, "other")
	for _, d := range []string{play, sonnet} {
		os.MkdirAll(d, 0o755)
	}
	writeTextShards(t, play, tok, "play", shakespeareParas(t, 0, 60<<10))
	writeTextShards(t, sonnet, tok, "other", shakespeareParas(t, 60<<10, 100<<10))
	mixPath := filepath.Join(dir, "mix.yaml")
	os.WriteFile(mixPath, []byte("sources:\n  - {name: play, path: play, weight: 2}\n  - {name: other, path: other, weight: 1}\n"), 0o644)
	held := filepath.Join(dir, "held.txt")
	os.WriteFile(held, []byte(strings.Join(shakespeareParas(t, 400<<10, 404<<10), "\n\n")), 0o644)

	o := DefaultOptions()
	o.BatchSize, o.SeqLen, o.Steps, o.LR, o.WarmupSteps = 4, 0, 24, 3e-3, 2
	o.ValEvery, o.ValBatches, o.CheckpointEvery, o.KeepCheckpoints = 8, 2, 8, 2
	o.Eval = []EvalSet{{Name: "held", Paths: []string{held}}}
	o.OutDir, o.PeakFLOPS = filepath.Join(dir, "run"), 1 // a peak no step stays under
	res, err := Train(context.Background(), TrainConfig{Data: mixPath, Model: writeModel(t, dir), Options: o, ValFraction: 0.1, Tokenizer: tokPath, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	last := res.History[len(res.History)-1]
	for _, r := range res.History {
		if !(r.MFU > 0 && r.MFU <= 1) {
			t.Fatalf("step %d: MFU %v outside (0, 1]", r.Step, r.MFU)
		}
	}
	if len(res.Passes) != 2 || res.Passes[0].Rows+res.Passes[1].Rows != 24*4 || res.Passes[0].Passes <= res.Passes[1].Passes {
		t.Fatalf("passes %+v", res.Passes)
	}
	ck, err := LoadCheckpoint(filepath.Join(o.OutDir, CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	vs, ok := HeldOutSet(ck.Options)
	if !ok {
		t.Fatalf("no held-out set in %+v", ck.Options)
	}
	got, err := Evaluate(context.Background(), o.OutDir, append([]EvalSet{vs}, ck.Options.Eval...), EvalOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[0].Set != "val" || got[1].Source != "play" || got[2].Source != "other" || got[3].Set != "held" {
		t.Fatalf("rows %+v", got)
	}
	if d := math.Abs(got[0].LossNats - last.ValLoss); d > 1e-4 {
		t.Fatalf("eval of the held-out split %.6f, the run's last validation loss %.6f", got[0].LossNats, last.ValLoss)
	}
	for _, r := range got[1:3] {
		if d := math.Abs(r.LossNats - last.Evals["val/"+r.Source]); d > 1e-4 {
			t.Fatalf("source %s: eval %.6f, run %.6f", r.Source, r.LossNats, last.Evals["val/"+r.Source])
		}
	}
	if d := math.Abs(got[3].LossNats - last.Evals["eval/held"]); d > 1e-4 || math.Abs(got[3].BitsPerByte-last.Evals["eval/held/bpb"]) > 1e-4 {
		t.Fatalf("eval set: Evaluate %+v, run %v", got[3], last.Evals)
	}
	if last.ValLoss > res.History[0].Loss-0.3 || got[3].LossNats > math.Log(300)-0.3 {
		t.Fatalf("no learning: first loss %.3f, val %.3f, held %.3f", res.History[0].Loss, last.ValLoss, got[3].LossNats)
	}
	// The log's score columns, read back.
	recs, err := ReadLog(filepath.Join(o.OutDir, "log.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if r := recs[7]; len(r.Evals) != 4 || r.Evals["val/play"] == 0 || r.Evals["eval/held/bpb"] == 0 || recs[6].Evals != nil {
		t.Fatalf("log.csv scores at step 8: %v, step 7: %v", r.Evals, recs[6].Evals)
	}
	// Two step-numbered checkpoints kept, the last two.
	kept, _ := filepath.Glob(filepath.Join(o.OutDir, "checkpoint-*.bin"))
	if len(kept) != 2 || filepath.Base(kept[0]) != StepCheckpoint(16) || filepath.Base(kept[1]) != StepCheckpoint(24) {
		t.Fatalf("kept %v", kept)
	}
	mid, err := Evaluate(context.Background(), kept[0], []EvalSet{vs}, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(mid[0].LossNats - res.History[15].ValLoss); d > 1e-4 {
		t.Fatalf("step 16 checkpoint scores %.6f, the run validated %.6f", mid[0].LossNats, res.History[15].ValLoss)
	}
	// Resuming on a loader with other options names the problem once.
	mix, err := OpenMixData(mixPath)
	if err != nil {
		t.Fatal(err)
	}
	other, err := shards.NewLoader(mix, shards.LoaderOptions{SeqLen: 32, BatchSize: 4, Seed: 999})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Resume(o.OutDir, NewCPU(1), 30, t.TempDir(), 1e9, DataInfo{}, other, nil)
	if err == nil || strings.Count(err.Error(), "loader state") != 1 {
		t.Fatalf("resume on another loader: %v", err)
	}
}

// writeModel writes a small model config for the tests.
func writeModel(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "model.yaml")
	os.WriteFile(p, []byte("layers: 1\nheads: 2\nwidth: 32\ncontext: 32\n"), 0o644)
	return p
}

// TestBitsPerByteAcrossTokenizers trains the same small model on the same
// text tokenized by two BPEs smelt trained (256+44 and 256+744 ids) and
// scores both on the same held-out text: nats per token differ by the
// tokens' lengths, bits per byte agree within 15% (measured: see
// docs/evaluation.md), and the untrained models' bits per byte are far
// higher.
func TestBitsPerByteAcrossTokenizers(t *testing.T) {
	if raceEnabled {
		// Two training runs of 300 steps: about 100 s under the race
		// detector on two busy cores. Plain go test and .ci/run run it.
		testutil.Thorough(t)
	}
	dir := t.TempDir()
	text := shakespeare(t)
	held := filepath.Join(dir, "held.txt")
	os.WriteFile(held, []byte(strings.Join(shakespeareParas(t, 900<<10, 910<<10), "\n\n")), 0o644)
	score := map[int]EvalResult{}
	for _, vocab := range []int{300, 1000} {
		tokPath, tok := evalTokenizer(t, dir, text[:300<<10], vocab)
		data := filepath.Join(dir, "data", tok.Name())
		os.MkdirAll(data, 0o755)
		writeTextShards(t, data, tok, "play", shakespeareParas(t, 0, 300<<10))
		o := DefaultOptions()
		o.BatchSize, o.SeqLen, o.LR, o.WarmupSteps, o.ValEvery = 8, 0, 3e-3, 10, 0
		o.OutDir = filepath.Join(dir, "run", tok.Name())
		// The same bytes for both: about 1.6 and 2.2 bytes per token.
		o.Steps = 300
		if vocab == 1000 {
			o.Steps = 220
		}
		if _, err := Train(context.Background(), TrainConfig{Data: data, Model: writeModel(t, dir), Options: o, Tokenizer: tokPath, Threads: 2}); err != nil {
			t.Fatal(err)
		}
		got, err := Evaluate(context.Background(), o.OutDir, []EvalSet{{Name: "held", Paths: []string{held}}}, EvalOptions{})
		if err != nil {
			t.Fatal(err)
		}
		score[vocab] = got[0]
		t.Logf("vocab %d: %d tokens, %d bytes, %.4f nats/token, %.4f bits/byte", vocab, got[0].Tokens, got[0].Bytes, got[0].LossNats, got[0].BitsPerByte)
	}
	a, b := score[300], score[1000]
	if a.Bytes != b.Bytes || a.Tokens <= b.Tokens*5/4 || b.LossNats <= a.LossNats*1.1 {
		t.Fatalf("the two tokenizers should cut the same bytes into clearly different tokens: %+v %+v", a, b)
	}
	if r := a.BitsPerByte / b.BitsPerByte; r < 1/1.15 || r > 1.15 {
		t.Fatalf("bits per byte %.4f and %.4f differ by more than 15%%", a.BitsPerByte, b.BitsPerByte)
	}
}
