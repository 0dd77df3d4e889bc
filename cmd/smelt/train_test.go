package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/trainer"
)

// TestTrainGenerateAnywhere trains on shards made with a trained tokenizer
// file, then deletes the file and works from another directory: generate
// uses the tokenizer the checkpoint embeds, and --resume finds the data the
// checkpoint records. A checkpoint without its tokenizer still generates
// from --prompt-ids with --ids, or with --tokenizer.
func TestTrainGenerateAnywhere(t *testing.T) {
	dir := t.TempDir()
	var docs []*shards.Document
	words := strings.Fields("the river ran low past the mill and the old man watched it go by with his dog in the evening light")
	var corpus strings.Builder
	for i := range 30 {
		var b strings.Builder
		for j := range 120 {
			b.WriteString(words[(i*7+j*3)%len(words)])
			b.WriteString(" ")
		}
		docs = append(docs, &shards.Document{ID: fmt.Sprintf("d%02d", i), Source: "web", Text: b.String()})
		corpus.WriteString(b.String() + "<|endoftext|>\n")
	}
	writeDocs(t, filepath.Join(dir, "docs"), docs)
	os.WriteFile(filepath.Join(dir, "corpus.txt"), []byte(corpus.String()), 0o644)
	tokFile := filepath.Join(dir, "tok", "river.json")
	mustRun := func(args ...string) string {
		t.Helper()
		out, err := runSmelt(t, args...)
		if err != nil {
			t.Fatalf("smelt %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	mustRun("tokenizer", "train", filepath.Join(dir, "corpus.txt"), "--vocab", "300", "--special", "<|endoftext|>", "--out", tokFile)
	tokDir := filepath.Join(dir, "tokens")
	mustRun("tokenize", filepath.Join(dir, "docs"), "--out", tokDir, "--tokenizer", tokFile, "--source", "web")
	train := func(out string, extra ...string) {
		t.Helper()
		mustRun(append([]string{"train", "--data", tokDir, "--config", "tiny", "--steps", "6", "--batch-size", "2", "--seq-len", "16",
			"--warmup", "1", "--val-every", "3", "--val-fraction", "0.2", "--threads", "1", "--out", out}, extra...)...)
	}
	run := filepath.Join(dir, "run")
	train(run, "--tokenizer", tokFile)
	plain := filepath.Join(dir, "plain")
	train(plain)
	noval := filepath.Join(dir, "noval")
	train(noval, "--val-every", "0")

	saved, _ := os.ReadFile(tokFile)
	os.RemoveAll(filepath.Join(dir, "tok"))
	t.Chdir(t.TempDir())

	if out := mustRun("generate", "--checkpoint", run, "--prompt", "the river", "--tokens", "8"); !strings.HasPrefix(out, "the river") {
		t.Fatalf("generate printed %q", out)
	}
	mustRun("train", "--resume", run, "--steps", "9", "--threads", "1")
	recs, err := trainer.ReadLog(filepath.Join(run, "log.csv"))
	if err != nil || len(recs) != 9 {
		t.Fatalf("log after resume: %d rows, %v", len(recs), err)
	}
	for _, r := range recs {
		if math.IsNaN(r.ValLoss) != (r.Step%3 != 0) {
			t.Fatalf("step %d: validation loss %v", r.Step, r.ValLoss)
		}
	}
	ck, err := trainer.LoadCheckpoint(filepath.Join(run, trainer.CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	if ck.Options.ValFraction != 0.2 || ck.TokenizerData == nil || ck.TokenizerFile != "river.json" {
		t.Fatalf("checkpoint: val fraction %v, tokenizer file %q (%d bytes)", ck.Options.ValFraction, ck.TokenizerFile, len(ck.TokenizerData))
	}
	if ck, _ := trainer.LoadCheckpoint(filepath.Join(noval, trainer.CheckpointFile)); ck.Options.ValFraction != 0 {
		t.Fatalf("without validation the run held out %v", ck.Options.ValFraction)
	}

	// The run trained without --tokenizer could not embed it.
	if _, err := runSmelt(t, "generate", "--checkpoint", plain, "--prompt", "the"); err == nil || !strings.Contains(err.Error(), "--tokenizer") {
		t.Fatalf("want an error suggesting --tokenizer, got %v", err)
	}
	out := mustRun("generate", "--checkpoint", plain, "--prompt-ids", "5,6", "--ids", "--tokens", "4")
	if f := strings.Fields(out); len(f) != 4 {
		t.Fatalf("--ids printed %q", out)
	}
	os.WriteFile("river.json", saved, 0o644)
	mustRun("generate", "--checkpoint", plain, "--tokenizer", "river.json", "--prompt", "the", "--tokens", "4")
	if _, err := runSmelt(t, "generate", "--checkpoint", plain, "--tokenizer", "gpt2", "--prompt", "the"); err == nil || !strings.Contains(err.Error(), "ranks hash") {
		t.Fatalf("another tokenizer accepted: %v", err)
	}
}
