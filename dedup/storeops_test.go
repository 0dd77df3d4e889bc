package dedup

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

func uniqueDocs(seed int64, n int, prefix string) []*shards.Document {
	r := rand.New(rand.NewSource(seed))
	var docs []*shards.Document
	for i := 0; i < n; i++ {
		docs = append(docs, &shards.Document{ID: fmt.Sprintf("%s%04d", prefix, i), Source: "web", URL: fmt.Sprintf("https://%s.example/%d", prefix, i), Text: strings.Join(randomWords(r, 120), " ")})
	}
	return docs
}

func segDirs(t *testing.T, store string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(store, segDirName))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestStoreRemoveThenCorrectedRerun is the case: crawl A's output
// is deleted and a corrected A2 (A less one document) is run against the
// store. Against A's segment every document is an exact duplicate; with
// the segment removed (store rm), A2 keeps all of its documents.
func TestStoreRemoveThenCorrectedRerun(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	a := uniqueDocs(1, 200, "a")
	other := uniqueDocs(2, 50, "o")
	runStore(t, other, store)
	runStore(t, a, store)
	segs, err := ListSegments(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 2 || segs[1].Kept != 200 || len(segs[1].Inputs) != 1 || segs[1].Created.IsZero() {
		t.Fatalf("segments %+v", segs)
	}
	a2 := a[1:]
	if _, kept, _ := runStore(t, a2, store); len(kept) != 0 {
		t.Fatalf("against A's segment A2 keeps %d, want 0", len(kept))
	}
	// That run committed an empty segment; remove it and A's.
	segs, _ = ListSegments(context.Background(), store)
	m, err := RemoveSegments(context.Background(), store, []uint64{segs[1].Gen, segs[2].Gen})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Removed) != 2 || m.Purged != 2 || len(m.Busy) != 0 {
		t.Fatalf("rm: %+v", m)
	}
	if d := segDirs(t, store); len(d) != 1 {
		t.Fatalf("segment directories after rm: %v", d)
	}
	res, kept, _ := runStore(t, a2, store)
	if len(kept) != len(a2) {
		t.Fatalf("after store rm, A2 keeps %d of %d (%+v)", len(kept), len(a2), res.Summary)
	}
	// The other crawl is still in the store.
	if _, kept, _ := runStore(t, other[:10], store); len(kept) != 0 {
		t.Errorf("copies of the remaining segment's documents: %d kept", len(kept))
	}
	segs, _ = ListSegments(context.Background(), store)
	for i := 1; i < len(segs); i++ {
		if segs[i].Gen <= segs[i-1].Gen || segs[i].Gen <= 3 {
			t.Errorf("generations %d after %d: a removed generation is never given again", segs[i].Gen, segs[i-1].Gen)
		}
	}
}

// TestStoreRemoveWhileInUse: a segment removed while a run uses the store
// leaves the catalogue at once, its files stay until the store is idle.
func TestStoreRemoveWhileInUse(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	runStore(t, uniqueDocs(3, 30, "x"), store)
	runStore(t, uniqueDocs(4, 30, "y"), store)
	release, err := UseStore(store)
	if err != nil {
		t.Fatal(err)
	}
	m, err := RemoveSegments(context.Background(), store, []uint64{1})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Busy) != 1 || m.Purged != 0 || len(segDirs(t, store)) != 2 {
		t.Fatalf("rm while in use: %+v, dirs %v", m, segDirs(t, store))
	}
	if _, err := CompactStore(context.Background(), store); err == nil {
		t.Fatal("compact while a run uses the store")
	}
	release()
	m, err = CompactStore(context.Background(), store) // one segment: purges only
	if err != nil {
		t.Fatal(err)
	}
	if m.Purged != 1 || len(segDirs(t, store)) != 1 {
		t.Fatalf("after the run: %+v, dirs %v", m, segDirs(t, store))
	}
}

// TestStoreCompact merges three segments into one: a later run decides
// the same against the compacted store as against the original.
func TestStoreCompact(t *testing.T) {
	tmp := t.TempDir()
	stores := []string{filepath.Join(tmp, "s1"), filepath.Join(tmp, "s2")}
	x, y, z := uniqueDocs(5, 60, "x"), uniqueDocs(6, 60, "y"), uniqueDocs(7, 60, "z")
	for _, s := range stores {
		runStore(t, x, s)
		runStore(t, y, s)
		runStore(t, z, s)
	}
	m, err := CompactStore(context.Background(), stores[1])
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Removed) != 3 || m.Added == nil || m.Added.Kept != 180 || len(m.Added.Runs) != 3 || m.Purged != 3 {
		t.Fatalf("compact: %+v", m)
	}
	next := append(append([]*shards.Document{}, x[:5]...), z[10:20]...)
	next = append(next, uniqueDocs(8, 30, "n")...)
	for _, d := range next[:15] {
		w := strings.Fields(d.Text)
		w[50] = "recaptured"
		next = append(next, &shards.Document{ID: d.ID + "-near", Source: "web", Text: strings.Join(w, " ")})
	}
	var got [2]string
	for i, s := range stores {
		res, kept, dropped := runStore(t, next, s)
		var l []string
		for _, d := range kept {
			l = append(l, "kept "+d.ID)
		}
		for _, d := range dropped {
			l = append(l, fmt.Sprintf("dropped %s %s %s %s", d.ID, d.Drop.Reason, d.Drop.Value, d.Drop.DupOf))
		}
		got[i] = strings.Join(l, "\n")
		if len(kept) != 30 {
			t.Errorf("store %d: %d kept, want 30 (%+v)", i, len(kept), res.Summary)
		}
	}
	if got[0] != got[1] {
		t.Errorf("decisions against the compacted store differ:\n%s\n---\n%s", got[0], got[1])
	}
}

// TestAddToStore records documents in the store without a run's decision
// (the way taken-down documents are kept from coming back): a later run
// drops their copies and near copies.
func TestAddToStore(t *testing.T) {
	tmp := t.TempDir()
	store := filepath.Join(tmp, "store")
	gone := uniqueDocs(9, 20, "gone")
	writeInput(t, filepath.Join(tmp, "gone"), gone, 0)
	seg, err := AddToStore(context.Background(), store, []string{filepath.Join(tmp, "gone")}, DefaultOptions(), "")
	if err != nil {
		t.Fatal(err)
	}
	if seg.Kept != 20 {
		t.Fatalf("added %+v", seg)
	}
	next := uniqueDocs(10, 10, "k")
	for _, d := range gone[:5] {
		w := strings.Fields(d.Text)
		w[60] = "again"
		next = append(next, &shards.Document{ID: d.ID + "-back", Source: "web", Text: strings.Join(w, " ")})
	}
	_, kept, dropped := runStore(t, next, store)
	if len(kept) != 10 || len(dropped) != 5 {
		t.Errorf("%d kept, %d dropped; want 10 and the 5 near copies of added documents", len(kept), len(dropped))
	}
}
