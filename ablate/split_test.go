package ablate

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
)

func ids(docs []*shards.Document) []string {
	var out []string
	for _, d := range docs {
		out = append(out, d.ID)
	}
	slices.Sort(out)
	return out
}

// TestSplitStable splits the same documents as one directory with one
// worker and as two directories, in the other order, with four workers:
// the held-out ids are the same, the two sides partition the input, each
// side's dropped/ holds the other side, and the fraction is about right.
func TestSplitStable(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	var docs []*shards.Document
	for i := 0; i < 2000; i++ {
		docs = append(docs, &shards.Document{ID: fmt.Sprintf("doc-%05d", i), Source: "web", Text: fmt.Sprintf("text %d", i)})
	}
	writeDocs(t, filepath.Join(root, "all"), docs)
	writeDocs(t, filepath.Join(root, "a"), docs[:700])
	writeDocs(t, filepath.Join(root, "b"), docs[700:])
	run := func(name string, workers int, in ...string) (train, held []string) {
		out, h := filepath.Join(root, name, "train"), filepath.Join(root, name, "held")
		if _, _, err := Split(ctx, SplitOptions{Inputs: in, Fraction: 0.2, Seed: 9, Out: out, HeldOut: h, Workers: workers}); err != nil {
			t.Fatal(err)
		}
		tr, hd := ids(testutil.ReadDocs(t, out)), ids(testutil.ReadDocs(t, h))
		if got := ids(testutil.ReadDocs(t, filepath.Join(out, shards.DroppedDir))); !slices.Equal(got, hd) {
			t.Errorf("%s: the training side's dropped/ is not the held-out side", name)
		}
		return tr, hd
	}
	tr1, h1 := run("one", 1, filepath.Join(root, "all"))
	tr2, h2 := run("two", 4, filepath.Join(root, "b"), filepath.Join(root, "a"))
	if !slices.Equal(h1, h2) || !slices.Equal(tr1, tr2) {
		t.Errorf("held-out ids differ between partitionings: %d vs %d", len(h1), len(h2))
	}
	if len(tr1)+len(h1) != len(docs) || len(h1) < 330 || len(h1) > 470 {
		t.Errorf("%d train + %d held out of %d at fraction 0.2", len(tr1), len(h1), len(docs))
	}
	other := 0
	for _, id := range h1 {
		if !HeldOut(id, 0.2, 9) {
			t.Fatalf("%s in the held-out side but HeldOut says no", id)
		}
		if HeldOut(id, 0.2, 10) {
			other++
		}
	}
	if other > len(h1)/2 {
		t.Errorf("seed 10 holds out %d of seed 9's %d documents: seeds should pick different documents", other, len(h1))
	}
	if _, _, err := Split(ctx, SplitOptions{Inputs: []string{filepath.Join(root, "all")}, Fraction: 1, Out: "x", HeldOut: "y"}); err == nil {
		t.Error("fraction 1 accepted")
	}
}
