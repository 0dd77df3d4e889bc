package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/trainer"
)

// TestEvalVerb trains with --eval and --keep-checkpoints on shards of real
// text, then scores the run with smelt eval: --held-out gives the run's
// last validation loss, the eval set its last eval column, each within
// 1e-4; the table names every set and source.
func TestEvalVerb(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	raw, err := os.ReadFile(testutil.SharedData(t, "clean_text/tinyshakespeare.txt"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var docs []*shards.Document
	for i, p := range strings.Split(string(raw[:60<<10]), "\n\n") {
		docs = append(docs, &shards.Document{ID: fmt.Sprintf("p%04d", i), Source: "play", Text: p})
	}
	writeDocs(t, filepath.Join(dir, "docs"), docs)
	os.WriteFile(filepath.Join(dir, "corpus.txt"), raw[:60<<10], 0o644)
	held := filepath.Join(dir, "held.txt")
	os.WriteFile(held, raw[500<<10:503<<10], 0o644)
	tokFile := filepath.Join(dir, "tok.json")
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
	mustRun("tokenize", filepath.Join(dir, "docs"), "--out", tokDir, "--tokenizer", tokFile, "--source", "play")
	run := filepath.Join(dir, "run")
	out := mustRun("train", "--data", tokDir, "--config", "tiny", "--steps", "8", "--batch-size", "2", "--seq-len", "32",
		"--warmup", "1", "--val-every", "4", "--val-fraction", "0.1", "--threads", "2", "--tokenizer", tokFile,
		"--eval", "book="+held, "--keep-checkpoints", "1", "--checkpoint-every", "4", "--out", run)
	if !strings.Contains(out, "book ") || !strings.Contains(out, "scores at the last step") {
		t.Fatalf("train printed no eval scores:\n%s", out)
	}
	if kept, _ := filepath.Glob(filepath.Join(run, "checkpoint-*.bin")); len(kept) != 1 || filepath.Base(kept[0]) != "checkpoint-00000008.bin" {
		t.Fatalf("kept checkpoints %v", kept)
	}
	recs, err := trainer.ReadLog(filepath.Join(run, "log.csv"))
	if err != nil {
		t.Fatal(err)
	}
	last := recs[len(recs)-1]
	js := mustRun("eval", "--checkpoint", run, "--held-out", "--json", "book="+held)
	var rows []trainer.EvalResult
	if err := json.Unmarshal([]byte(js), &rows); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	if len(rows) != 4 || rows[0].Set != "val" || rows[2].Set != "book" || rows[3].Source != "held" {
		t.Fatalf("rows %+v", rows)
	}
	if d := math.Abs(rows[0].LossNats - last.ValLoss); d > 1e-4 {
		t.Fatalf("smelt eval --held-out %.6f, the run's last validation loss %.6f", rows[0].LossNats, last.ValLoss)
	}
	if d := math.Abs(rows[2].LossNats - last.Evals["eval/book"]); d > 1e-4 {
		t.Fatalf("smelt eval %.6f, the run's last eval/book %.6f", rows[2].LossNats, last.Evals["eval/book"])
	}
	table := mustRun("eval", "--checkpoint", run, held, tokDir)
	for _, want := range []string{"bits/byte", "held ", "tokens ", "(all)"} {
		if !strings.Contains(table, want) {
			t.Fatalf("table lacks %q:\n%s", want, table)
		}
	}
	if _, err := runSmelt(t, "eval", "--checkpoint", run); err == nil {
		t.Fatal("eval with no data succeeded")
	}
}

// TestTrainInterruptResumes: Ctrl-C during training says which command
// resumes the run, and that command resumes it.
func TestTrainInterruptResumes(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	cmd, log := startSmelt(t, "train", "--data", "synthetic:64", "--config", "tiny", "--steps", "100000", "--batch-size", "2",
		"--seq-len", "16", "--val-every", "0", "--checkpoint-every", "2", "--threads", "1", "--out", out)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(out, trainer.CheckpointFile)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no checkpoint after 2 minutes\n%s", log)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v, want 130\n%s", err, log)
	}
	want := "resume with: smelt train --resume " + out
	if !strings.Contains(log.String(), want) || strings.Contains(log.String(), "same command") {
		t.Fatalf("the interrupt message does not say %q:\n%s", want, log)
	}
	ck, err := trainer.LoadCheckpoint(filepath.Join(out, trainer.CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	steps := fmt.Sprint(ck.Step + 2)
	if o, err := runSmelt(t, "train", "--resume", out, "--steps", steps); err != nil || !strings.Contains(o, "done:") {
		t.Fatalf("smelt train --resume %s --steps %s: %v\n%s", out, steps, err, o)
	}
}
