package ablate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCleanBeatsShuffled trains two arms whose data differ in a known way
// (Tom Sawyer as written, and the same text with the words of every
// document shuffled) with two seeds each, and checks that the table ranks
// the clean arm better on held-out Tom Sawyer pages and on another book
// beyond the seed spread. It also checks that the held-out pages, which
// were left in the shuffled arm's source, are removed from it by the
// decontamination before tokenizing, and counted.
func TestCleanBeatsShuffled(t *testing.T) {
	if raceEnabled {
		t.Skip("trains models: too slow under -race (TestRunSmall covers the orchestration)")
	}
	ctx := context.Background()
	root := t.TempDir()
	docs := tomSawyer(t)
	writeDocs(t, filepath.Join(root, "all"), docs)
	if _, _, err := Split(ctx, SplitOptions{Inputs: []string{filepath.Join(root, "all")}, Fraction: 0.1, Seed: 7,
		Out: filepath.Join(root, "train"), HeldOut: filepath.Join(root, "held")}); err != nil {
		t.Fatal(err)
	}
	// The shuffled arm starts from all the documents: the clean held-out
	// pages are among them and must be removed.
	writeDocs(t, filepath.Join(root, "shuffled"), append(shuffled(docs, 3), docs...))
	sherlock, err := os.ReadFile(moduleFile(t, "github.com/pierrec/lz4/v4", "testdata/pg1661.txt"))
	if err != nil {
		t.Fatal(err)
	}
	book := filepath.Join(root, "sherlock.txt")
	if err := os.WriteFile(book, sherlock[20000:80000], 0o644); err != nil {
		t.Fatal(err)
	}
	tok, tokPath := bpe(t, root, 512, docs)
	cfg := Config{Out: filepath.Join(root, "ablate"), Tokenizer: tok, TokenizerPath: tokPath, Model: "tiny",
		Steps: 300, BatchSize: 8, LR: 1e-2, Warmup: 20, Seeds: []uint64{1, 2}, Workers: 1, Parallel: 2,
		Evals: []EvalSet{{Name: "pages", Paths: []string{filepath.Join(root, "held")}}, {Name: "sherlock", Paths: []string{book}}},
		Log:   func(s string) { t.Log(s) }}
	arms := []Arm{
		{Name: "clean", Sources: []Source{{Name: "clean", Dirs: []string{filepath.Join(root, "train")}, Weight: 1}}},
		{Name: "shuffled", Sources: []Source{{Name: "shuffled", Dirs: []string{filepath.Join(root, "shuffled")}, Weight: 1}}},
	}
	res, err := Run(ctx, cfg, arms)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + res.Table())
	if !res.Beats("clean", "shuffled", "pages") {
		t.Errorf("pages: clean did not beat shuffled beyond the seed spread")
	}
	// On another book the gap is smaller, but the order is the same.
	c, _ := res.Arms[0].Cell("sherlock")
	s, _ := res.Arms[1].Cell("sherlock")
	if c.Loss >= s.Loss || c.BPB >= s.BPB {
		t.Errorf("sherlock: clean %.3f nats %.3f bpb, shuffled %.3f nats %.3f bpb: want clean lower", c.Loss, c.BPB, s.Loss, s.BPB)
	}
	held, err := ReadResult(cfg.Out)
	if err != nil {
		t.Fatal(err)
	}
	clean, shuf := held.Arms[0].Sources[0], held.Arms[1].Sources[0]
	if clean.Removed != 0 {
		t.Errorf("clean arm: %d documents removed, want 0 (the split took the held-out pages out)", clean.Removed)
	}
	nHeld := len(docs) - int(held.Arms[0].Sources[0].Docs)
	if shuf.Removed < int64(nHeld) || shuf.Contaminated["pages"] < int64(nHeld) {
		t.Errorf("shuffled arm: %d removed (%v by set), want at least the %d held-out pages", shuf.Removed, shuf.Contaminated, nHeld)
	}
	table, err := os.ReadFile(filepath.Join(cfg.Out, TableFile))
	if err != nil || !strings.Contains(string(table), "best on pages: clean; beyond the seed spread (every seed better) than: shuffled") {
		t.Errorf("table:\n%s (%v)", table, err)
	}
	// A second run reuses every model and gives the same result.
	again, err := Run(ctx, cfg, arms)
	if err != nil {
		t.Fatal(err)
	}
	if again.Table() != res.Table() {
		t.Errorf("second run differs:\n%s\nvs\n%s", again.Table(), res.Table())
	}
}
