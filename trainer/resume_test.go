package trainer

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/tokenize"
)

// TestResumeExtendsSchedule: a run whose cosine followed its steps, resumed
// with more, stretches the cosine to the new end; one with DecaySteps set
// keeps it. Resumed with its own step count, it is the same run.
func TestResumeExtendsSchedule(t *testing.T) {
	for _, decay := range []int{0, 10} {
		dir := t.TempDir()
		o := tinyOpts(dir, 10)
		o.DecaySteps, o.BatchTokens, o.ValEvery = decay, 0, 0
		tr, err := New(tinyCfg, NewCPU(1), o, DataInfo{Vocab: 64}, NewSyntheticBatcher(64, 3, 1), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := tr.History()[9].LR; got > 1.5*o.MinLR {
			t.Fatalf("decay %d: lr %g at the last step, want about min_lr", decay, got)
		}
		res, err := Resume(dir, NewCPU(1), 30, dir, 1e9, DataInfo{Vocab: 64}, NewSyntheticBatcher(64, 3, 1), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := res.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		h := res.History()
		want := Schedule{MaxLR: o.LR, MinLR: o.MinLR, Warmup: o.WarmupSteps, Decay: 30}.LR(10)
		if decay != 0 {
			want = o.MinLR
		}
		if got := h[10].LR; got != want {
			t.Fatalf("decay %d: lr %g at step 11 after extending to 30 steps, want %g", decay, got, want)
		}
		if decay == 0 && h[10].LR < 3*o.MinLR {
			t.Fatalf("extended schedule still at min_lr: %g", h[10].LR)
		}
	}
}

// TestCheckpointEmbedsTokenizer: a checkpoint holds its tokenizer file, so
// it loads with the file gone; resume refuses data with other ranks.
func TestCheckpointEmbedsTokenizer(t *testing.T) {
	dir := t.TempDir()
	tr0, err := tokenize.Train(context.Background(), []io.Reader{strings.NewReader(strings.Repeat("low lower lowest newer newest ", 300))},
		tokenize.TrainOptions{VocabSize: 270, Specials: []string{tokenize.EndOfText}, Pattern: tokenize.PatternGPT2})
	if err != nil {
		t.Fatal(err)
	}
	js, err := tr0.MarshalHF()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "low.json")
	os.WriteFile(file, js, 0o644)
	tok, err := tokenize.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	hash, name, data, err := TokenizerInfo(tok, file)
	if err != nil || name != "low.json" || len(data) != len(js) || hash != tok.RanksHash() {
		t.Fatalf("TokenizerInfo: %q %d bytes %v", name, len(data), err)
	}
	os.Remove(file)
	run := filepath.Join(dir, "run")
	o := tinyOpts(run, 2)
	o.ValEvery = 0
	info := DataInfo{Vocab: 64, Tokenizer: tok.Name(), TokenizerHash: hash, TokenizerFile: name, TokenizerData: data}
	tr, err := New(tinyCfg, NewCPU(1), o, info, NewSyntheticBatcher(64, 3, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, ck, err := LoadModel(run, NewCPU(1))
	if err != nil {
		t.Fatal(err)
	}
	back, err := ck.LoadTokenizer()
	if err != nil {
		t.Fatal(err)
	}
	if back.RanksHash() != hash || len(back.EncodeOrdinary("lowest newer")) >= 12 {
		t.Fatalf("embedded tokenizer: hash %s, want %s", back.RanksHash(), hash)
	}
	ck.TokenizerData = nil
	if _, err := ck.LoadTokenizer(); !errors.Is(err, ErrNoTokenizer) {
		t.Fatalf("no embedded tokenizer: %v", err)
	}
	// Same name, other ranks: refused.
	other := info
	other.TokenizerHash = "0000"
	if _, err := Resume(run, NewCPU(1), 4, run, 1e9, other, NewSyntheticBatcher(64, 3, 1), nil); err == nil || !strings.Contains(err.Error(), "ranks hash") {
		t.Fatalf("resumed on data with another tokenizer: %v", err)
	}
	if _, err := Resume(run, NewCPU(1), 4, run, 1e9, info, NewSyntheticBatcher(64, 3, 1), nil); err != nil {
		t.Fatal(err)
	}
}
