package ingest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInterruptBeforeFirstCheckpoint: ingest stopped before it wrote a
// shard says the output holds nothing yet, not that it keeps "0 records".
func TestInterruptBeforeFirstCheckpoint(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "docs.jsonl")
	var b strings.Builder
	for i := 0; i < 50; i++ {
		b.WriteString(`{"id":"d` + string(rune('a'+i%26)) + `","text":"some words of text"}` + "\n")
	}
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, []string{in}, filepath.Join(dir, "out"), Options{Source: "web", Workers: 1, TargetBytes: 1 << 20})
	if err == nil {
		t.Fatal("a cancelled ingest returned no error")
	}
	if strings.Contains(err.Error(), "0 records") || !strings.Contains(err.Error(), "holds nothing yet") {
		t.Errorf("interrupted before the first checkpoint: %v", err)
	}
}
