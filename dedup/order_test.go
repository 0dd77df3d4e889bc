package dedup

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
)

// chainDocs makes chains documents in edit chains of five: each document
// is the one before with edits words replaced, so neighbours are near
// duplicates and the ends of a chain often are not. This is the corpus on
// which a bucket step that compared members only with representatives made
// decisions that changed with the input order.
func chainDocs(seed int64, chains, edits int) []*shards.Document {
	r := rand.New(rand.NewSource(seed))
	var docs []*shards.Document
	for c := 0; c < chains; c++ {
		w := randomWords(r, 140+r.Intn(40))
		for k := 0; k < 5; k++ {
			docs = append(docs, &shards.Document{ID: fmt.Sprintf("c%05d-%d", c, k), Source: "web", Text: strings.Join(w, " ")})
			for e := 0; e < edits; e++ {
				w[r.Intn(len(w))] = fmt.Sprintf("edit%d", r.Intn(1e7))
			}
		}
	}
	return docs
}

// droppedIDs runs the staged decision (inputs input directories, parts
// bucket tasks) and returns the dropped ids, sorted, and the decisions by id.
func droppedIDs(t *testing.T, docs []*shards.Document, opt Options, inputs, parts int) ([]string, map[string]Decision) {
	t.Helper()
	res := stagedDedup(t, docs, opt, inputs, parts, "")
	var ids []string
	byID := map[string]Decision{}
	for pos, d := range res.Decisions {
		byID[docs[pos].ID] = d
		if d.Reason != "" {
			ids = append(ids, docs[pos].ID)
		}
	}
	slices.Sort(ids)
	return ids, byID
}

// TestChainsIndependentOfOrder: on ~5,000 documents in five-document edit
// chains, the dropped set is the same for the input in order, shuffled and
// reversed, cut into other sketch and bucket tasks, and the clusters are
// the all-pairs LSH components of the in-memory reference.
func TestChainsIndependentOfOrder(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	chains := 1000
	if testing.Short() || raceEnabled {
		chains = 200
	}
	docs := chainDocs(5, chains, 2)
	opt := DefaultOptions()
	want, _ := droppedIDs(t, docs, opt, 3, 4)
	if len(want) < chains || len(want) > 4*chains {
		t.Fatalf("%d of %d documents dropped: the chains are not what the test needs", len(want), len(docs))
	}
	res := stagedDedup(t, docs, opt, 2, 3, "")
	mem, _, err := memDedup(docs, opt)
	if err != nil {
		t.Fatal(err)
	}
	requireSameClusters(t, docs, res, mem)

	shuffled := slices.Clone(docs)
	rand.New(rand.NewSource(9)).Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
	reversed := slices.Clone(docs)
	slices.Reverse(reversed)
	for name, c := range map[string]struct {
		docs          []*shards.Document
		inputs, parts int
	}{"shuffled": {shuffled, 4, 2}, "reversed": {reversed, 1, 5}} {
		got, _ := droppedIDs(t, c.docs, opt, c.inputs, c.parts)
		if !slices.Equal(got, want) {
			t.Errorf("%s: %d dropped, in order: %d; the sets differ", name, len(got), len(want))
		}
	}
}

// boilerSet is the boilerplate set, scaled: n identical pages, n
// pages with 8 words of their own added, n identical pages with the same
// 150 words added (true similarity about 0.66 to the others: not a
// duplicate), and three bridge pages that chain the two kinds.
// The 150-word pages have the smallest ids, so without verify one of them
// survives and the cluster of all 3n+1 pages is dropped as its duplicates.
func boilerSet(n int) []*shards.Document {
	r := rand.New(rand.NewSource(77))
	boiler := randomWords(r, 300)
	extra := randomWords(r, 150)
	var docs []*shards.Document
	add := func(id string, w []string) {
		docs = append(docs, &shards.Document{ID: id, Source: "web", Text: strings.Join(w, " ")})
	}
	for i := 0; i < n; i++ {
		add(fmt.Sprintf("a%06d", i), boiler)
		add(fmt.Sprintf("b%06d", i), append(slices.Clone(boiler), randomWords(r, 8)...))
		add(fmt.Sprintf("A%06d", i), append(slices.Clone(boiler), extra...))
	}
	for i, k := range []int{37, 75, 112} {
		add(fmt.Sprintf("bridge%d", i+1), append(slices.Clone(boiler), extra[:k]...))
	}
	return docs
}

// checkVerified checks the verify property on a decision: every dropped
// document has its dup_of kept, at the similarity it records, at or above
// the threshold (1 for exact); no two kept documents of one cluster have an
// estimated similarity at or above the threshold.
func checkVerified(t *testing.T, docs []*shards.Document, res *Result, opt Options) {
	t.Helper()
	sk, err := NewSketcher(&opt)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]int64{}
	for i, d := range docs {
		byID[d.ID] = int64(i)
	}
	sigs := map[int64][]uint64{}
	sig := func(pos int64) []uint64 {
		if s, ok := sigs[pos]; ok {
			return s
		}
		s := sk.Sketch(docs[pos]).Sig
		sigs[pos] = s
		return s
	}
	for pos, d := range res.Decisions {
		if d.Reason == "" {
			continue
		}
		sp, ok := byID[d.DupOf]
		if !ok || res.Decisions[sp].Reason != "" {
			t.Fatalf("%s dropped as a duplicate of %q, which is not kept", docs[pos].ID, d.DupOf)
		}
		j := Jaccard(sig(pos), sig(sp))
		if d.Reason == ReasonExact {
			j = 1
		}
		if v, err := strconv.ParseFloat(d.Value, 64); err != nil || v != float64(int(j*1e4+0.5))/1e4 || j < opt.Threshold {
			t.Fatalf("%s dropped (%s) with value %q; its similarity to %s is %.4f", docs[pos].ID, d.Reason, d.Value, d.DupOf, j)
		}
	}
	for _, c := range res.Clusters {
		var kept []int64
		for _, p := range c.Members {
			if res.Decisions[p].Reason == "" {
				kept = append(kept, p)
			}
		}
		for a := range kept {
			for b := a + 1; b < len(kept); b++ {
				if j := Jaccard(sig(kept[a]), sig(kept[b])); j >= opt.Threshold {
					t.Fatalf("kept %s and %s of one cluster have similarity %.4f", docs[kept[a]].ID, docs[kept[b]].ID, j)
				}
			}
		}
	}
}

// TestVerifyOutlierSurvivor is the boilerplate case: one cluster
// whose preferred member (smallest id) is an outlier, not similar to most
// of the others. Without verify its members are all dropped for it; with
// verify the outlier cannot drop a page that is not similar to it, one
// page of each kind of the set is kept and no two kept pages are similar.
func TestVerifyOutlierSurvivor(t *testing.T) { verifyOutlier(t, 300) }

// TestVerifyOutlierSurvivor60k is the same on the 60,000 pages.
func TestVerifyOutlierSurvivor60k(t *testing.T) {
	testutil.Thorough(t)
	skipUnderRace(t)
	verifyOutlier(t, 20000)
}

func verifyOutlier(t *testing.T, n int) {
	docs := boilerSet(n)
	opt := DefaultOptions()
	res := stagedDedup(t, docs, opt, 3, 4, "")
	if len(res.Clusters) != 1 || res.Clusters[0].Survivor != "A000000" || res.Summary.Dropped != int64(len(docs)-1) {
		t.Fatalf("without verify: %d clusters, survivor %q, %d dropped; want one cluster of all, kept A000000", len(res.Clusters), res.Clusters[0].Survivor, res.Summary.Dropped)
	}
	opt.Verify = VerifySurvivor
	res = stagedDedup(t, docs, opt, 3, 4, "")
	checkVerified(t, docs, res, opt)
	kept := map[byte]int{}
	for pos, d := range res.Decisions {
		if d.Reason == "" {
			kept[docs[pos].ID[0]]++
		}
	}
	if kept['A'] != 1 || kept['a']+kept['b'] < 1 || kept['a']+kept['b'] > 3 {
		t.Errorf("verify kept %v pages by kind, want one A page and one or a few boilerplate pages", kept)
	}
	t.Logf("%d pages: verify kept %v, %d dropped", len(docs), kept, res.Summary.Dropped)
}

// TestVerifyChains: with verify on, the chain corpus keeps no two similar
// documents of one cluster and drops only at the threshold.
func TestVerifyChains(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	docs := chainDocs(6, 300, 2)
	opt := DefaultOptions()
	opt.Verify = VerifySurvivor
	res := stagedDedup(t, docs, opt, 2, 3, "")
	if res.Summary.VerifyKept == 0 {
		t.Fatal("verify kept no chain member: the chains are not what the test needs")
	}
	checkVerified(t, docs, res, opt)
	shuffled := slices.Clone(docs)
	slices.Reverse(shuffled)
	a, _ := droppedIDs(t, docs, opt, 2, 3)
	b, _ := droppedIDs(t, shuffled, opt, 3, 2)
	if !slices.Equal(a, b) {
		t.Errorf("verify: reversed input drops %d, in order %d: the sets differ", len(b), len(a))
	}
}

// TestURLDropsOnlyURLDuplicates is the four documents: a (URL u,
// text T), b (URL u, new text T2), c (another URL, T2), d (T2 and three
// words more). A URL match drops b only: T2 is kept once, and c and d are
// decided by their text, at their similarity.
func TestURLDropsOnlyURLDuplicates(t *testing.T) {
	r := rand.New(rand.NewSource(12))
	T, T2 := text(r, 200), text(r, 200)
	docs := []*shards.Document{
		{ID: "a", URL: "https://x/u", Text: T},
		{ID: "b", URL: "https://x/u", Text: T2},
		{ID: "c", URL: "https://x/other", Text: T2},
		{ID: "d", URL: "https://x/third", Text: T2 + " three more words"},
	}
	keptT2 := func(got map[string]Decision, n int) {
		t.Helper()
		k := 0
		for _, id := range []string{"b", "c", "d"} {
			if got[id].Reason == "" {
				k++
			}
		}
		if k != n {
			t.Errorf("T2 kept %d times, want %d: %+v", k, n, got)
		}
	}
	all := Options{Exact: true, URL: true, MinHash: true, NGram: 5, Perms: 112, Threshold: 0.8, Seed: 1}
	got := decisions(t, docs, all)
	if got["a"].Reason != "" || got["b"].Reason != ReasonURL || got["b"].DupOf != "a" || got["b"].Value != "1" {
		t.Errorf("--exact --url --minhash: a %+v, b %+v", got["a"], got["b"])
	}
	if got["c"].Reason != "" || got["d"].Reason != ReasonMinHash || got["d"].DupOf != "c" {
		t.Errorf("--exact --url --minhash: c %+v, d %+v", got["c"], got["d"])
	}
	if v, err := strconv.ParseFloat(got["d"].Value, 64); err != nil || v < 0.8 {
		t.Errorf("d dropped with value %q", got["d"].Value)
	}
	keptT2(got, 1)
	got = decisions(t, docs, Options{Exact: true, URL: true})
	if got["b"].Reason != ReasonURL || got["c"].Reason != "" || got["d"].Reason != "" {
		t.Errorf("--exact --url: %+v", got)
	}
	keptT2(got, 2)
	// Order does not matter.
	rev := slices.Clone(docs)
	slices.Reverse(rev)
	a, _ := droppedIDs(t, docs, all, 1, 2)
	b, _ := droppedIDs(t, rev, all, 2, 1)
	if !slices.Equal(a, b) {
		t.Errorf("reversed: dropped %v, in order %v", b, a)
	}
}

// TestHotBucketFast: the boilerplate set of the issue (60,000 pages behind
// testutil.Thorough, 6,000 by default) stays linear: its hot LSH buckets
// cost at most BucketWindow comparisons a page.
func TestHotBucketFast(t *testing.T) { hotBucket(t, 2000) }

// TestHotBucketFast60k is the same on the 60,000 pages.
func TestHotBucketFast60k(t *testing.T) {
	testutil.Thorough(t)
	skipUnderRace(t)
	hotBucket(t, 20000)
}

func hotBucket(t *testing.T, n int) {
	docs := boilerSet(n)
	dir := t.TempDir()
	writeInput(t, filepath.Join(dir, "in"), docs, 0)
	_, res, err := Run(context.Background(), Config{Inputs: []string{filepath.Join(dir, "in")}, Out: filepath.Join(dir, "out"), Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Summary.CandidatePairs; c > int64(BucketWindow*14*len(docs)) {
		t.Errorf("%d candidate pairs for %d pages", c, len(docs))
	}
	t.Logf("%d pages: %d candidate pairs, %d verified, largest bucket %d", len(docs), res.Summary.CandidatePairs, res.Summary.VerifiedPairs, res.Summary.LargestBucket)
	_ = os.RemoveAll(dir)
}

// skipUnderRace skips a thoroughness run under -race, where it would take
// most of go test's 10 minutes on two cores; .ci/run runs the dedup package
// again without -race and with SMELT_THOROUGH=1, so these still run in CI.
func skipUnderRace(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("thoroughness run: too slow under -race; .ci/run runs it without -race")
	}
}
