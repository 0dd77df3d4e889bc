package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

// TestDedupStoreVerbs: smelt dedup store ls lists a run's segment, rm
// removes it, and the same crawl run again then keeps its documents.
func TestDedupStoreVerbs(t *testing.T) {
	tmp := t.TempDir()
	var docs []*shards.Document
	for i := 0; i < 30; i++ {
		docs = append(docs, &shards.Document{ID: fmt.Sprint("d", i), Source: "web", Text: fmt.Sprintf("document %d says %s", i, strings.Repeat(fmt.Sprintf("word%d ", i), 20))})
	}
	writeDocs(t, filepath.Join(tmp, "a"), docs)
	writeDocs(t, filepath.Join(tmp, "a2"), docs[1:])
	store := filepath.Join(tmp, "store")
	if out, err := runSmelt(t, "dedup", filepath.Join(tmp, "a"), "--out", filepath.Join(tmp, "o1"), "--store", store); err != nil {
		t.Fatal(err, out)
	}
	out, err := runSmelt(t, "dedup", "store", "ls", store)
	if err != nil || !strings.Contains(out, "1 segments, 30 documents") || !strings.Contains(out, filepath.Join(tmp, "a")) {
		t.Fatalf("store ls: %v\n%s", err, out)
	}
	if out, err := runSmelt(t, "dedup", filepath.Join(tmp, "a2"), "--out", filepath.Join(tmp, "o2"), "--store", store); err != nil || !strings.Contains(out, "0 kept") {
		t.Fatalf("against the store: %v\n%s", err, out)
	}
	if out, err := runSmelt(t, "dedup", "store", "rm", store, "1", "2"); err != nil || !strings.Contains(out, "removed 2 segments (30 documents); 2 segment directories deleted") {
		t.Fatalf("store rm: %v\n%s", err, out)
	}
	if out, err := runSmelt(t, "dedup", filepath.Join(tmp, "a2"), "--out", filepath.Join(tmp, "o3"), "--store", store); err != nil || !strings.Contains(out, "29 kept") {
		t.Fatalf("after store rm: %v\n%s", err, out)
	}
	if out, err := runSmelt(t, "dedup", "store", "rm", store, "x"); err == nil {
		t.Fatalf("store rm x: %s", out)
	}
}
