package trainer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

// writeByteShards writes Tiny Shakespeare's paragraphs (up to maxBytes) as a
// token-shard directory with a byte-level vocabulary: ids 0-255 are bytes,
// 256 is end-of-text.
func writeByteShards(t *testing.T, dir string, maxBytes int) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "shared", "data", "clean_text", "tinyshakespeare.txt"))
	if err != nil {
		t.Skipf("real data not present (%v); synthetic-data tests still ran", err)
	}
	raw = raw[:min(len(raw), maxBytes)]
	tok := shards.TokenizerInfo{Name: "bytes", RanksHash: "identity", VocabSize: 257, EOT: 256}
	w, err := shards.NewTokenWriter(dir, shards.TokenWriterOptions{Tokenizer: tok, TargetBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i, para := range strings.Split(string(raw), "\n\n") {
		ids := make([]uint32, 0, len(para)+1)
		for j := 0; j < len(para); j++ {
			ids = append(ids, uint32(para[j]))
		}
		if err := w.Write(fmt.Sprintf("para-%d", i), "shakespeare", append(ids, tok.EOT)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m := &shards.Manifest{Kind: shards.KindTokens, Stage: "test", Shards: w.Shards(), Totals: shards.SumShards(w.Shards()), Tokenizer: &tok}
	if err := shards.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
}

// TestTrainFromShardLoader trains on real token shards through
// shards.Loader (held-out validation split by document id), stops at a
// checkpoint and resumes with the loader state restored: the losses after
// the resume equal the uninterrupted run's bit for bit.
func TestTrainFromShardLoader(t *testing.T) {
	data := t.TempDir()
	writeByteShards(t, data, 300<<10)
	mix, err := shards.OpenMixDir(data)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Layers: 2, Heads: 2, Width: 32, Context: 32, Vocab: mix.VocabSize()}
	open := func() (Batcher, Batcher) {
		lo := shards.LoaderOptions{SeqLen: 32, BatchSize: 4, Seed: 3, ValFraction: 0.05}
		tl, err := shards.NewLoader(mix, lo)
		if err != nil {
			t.Fatal(err)
		}
		lo.Val = true
		vl, err := shards.NewLoader(mix, lo)
		if err != nil {
			t.Fatal(err)
		}
		return tl, vl
	}
	opts := func(dir string, steps int) Options {
		o := DefaultOptions()
		o.BatchSize, o.SeqLen, o.Steps, o.DecaySteps = 4, 32, steps, 24
		o.LR, o.MinLR, o.WarmupSteps, o.ValEvery, o.ValBatches = 3e-3, 3e-4, 2, 6, 2
		o.OutDir, o.PeakFLOPS = dir, 1e9
		return o
	}
	info := DataInfo{Vocab: mix.VocabSize(), Tokenizer: mix.Tokenizer(), EOT: mix.EOT()}
	tl, vl := open()
	full, err := New(cfg, NewCPU(2), opts(t.TempDir(), 24), info, tl, vl)
	if err != nil {
		t.Fatal(err)
	}
	if err := full.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := full.History()
	if h[len(h)-1].ValLoss > h[0].Loss-1 {
		t.Fatalf("no learning on shards: loss %.3f, final val %.3f", h[0].Loss, h[len(h)-1].ValLoss)
	}
	dir := t.TempDir()
	tl, vl = open()
	part, err := New(cfg, NewCPU(2), opts(dir, 10), info, tl, vl)
	if err != nil {
		t.Fatal(err)
	}
	if err := part.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	tl, vl = open()
	res, err := Resume(dir, NewCPU(2), 24, dir, 1e9, info, tl, vl)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := losses(res.History()[10:]), losses(full.History()[10:]); !sameBits(got, want) {
		t.Fatalf("resumed run on the shard loader differs:\n%v\n%v", got, want)
	}
	ck, err := LoadCheckpoint(filepath.Join(dir, CheckpointFile))
	if err != nil || ck.Tokenizer != "bytes" || ck.EOT != 256 {
		t.Fatalf("checkpoint tokenizer %q eot %d: %v", ck.Tokenizer, ck.EOT, err)
	}
}
