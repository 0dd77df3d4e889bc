package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/ablate"
	"github.com/smelt-dev/smelt/shards"
)

// TestSplitCommand: smelt split writes both sides and says how many went
// where; it refuses a fraction outside (0, 1) and a missing output; smelt
// report --compare without an ablation says so.
func TestSplitCommand(t *testing.T) {
	dir := t.TempDir()
	var docs []*shards.Document
	for i := 0; i < 100; i++ {
		docs = append(docs, &shards.Document{ID: fmt.Sprintf("d%03d", i), Source: "web", Text: "text"})
	}
	writeDocs(t, filepath.Join(dir, "in"), docs)
	out, err := runSmelt(t, "split", filepath.Join(dir, "in"), "--fraction", "0.3", "--seed", "2",
		"--out", filepath.Join(dir, "train"), "--held-out", filepath.Join(dir, "held"))
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, d := range docs {
		if ablate.HeldOut(d.ID, 0.3, 2) {
			held++
		}
	}
	if want := fmt.Sprintf("split: 100 documents: %d for training (%s), %d held out", 100-held, filepath.Join(dir, "train"), held); !strings.Contains(out, want) {
		t.Errorf("output %q, want %q", out, want)
	}
	if _, err := runSmelt(t, "split", filepath.Join(dir, "in"), "--fraction", "1", "--out", "a", "--held-out", "b"); err == nil || !strings.Contains(err.Error(), "fraction") {
		t.Errorf("fraction 1: %v", err)
	}
	if _, err := runSmelt(t, "split", filepath.Join(dir, "in"), "--out", "a"); err == nil || !strings.Contains(err.Error(), "--held-out") {
		t.Errorf("no --held-out: %v", err)
	}
	if _, err := runSmelt(t, "report", "--compare", filepath.Join(dir, "in")); err == nil || !strings.Contains(err.Error(), "no ablation") {
		t.Errorf("report --compare without an ablation: %v", err)
	}
}
