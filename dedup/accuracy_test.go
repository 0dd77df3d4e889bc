package dedup

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

// trueJaccard is the Jaccard similarity of two texts' shingle sets, with
// the hasher's own shingling (word 5-grams of the normalised text).
func trueJaccard(h *Hasher, a, b string) float64 {
	set := func(text string) map[uint64]bool {
		sc := &scratch{ring: make([]uint64, h.NGram())}
		m := map[uint64]bool{}
		for _, x := range h.shingles(sc, text) {
			m[x] = true
		}
		return m
	}
	sa, sb := set(a), set(b)
	inter := 0
	for x := range sa {
		if sb[x] {
			inter++
		}
	}
	union := len(sa) + len(sb) - inter
	if union == 0 {
		return 1
	}
	return float64(inter) / float64(union)
}

// TestAccuracyByJaccardBand measures, at the default settings, the share
// of pairs marked duplicate (in one cluster) by their true Jaccard
// similarity: each of McCormick's 2,500 real articles against a copy with
// words replaced so that the true similarity falls between 0.55 and 1.
// The table is docs/dedup.md's; the test checks the two ends of the curve.
func TestAccuracyByJaccardBand(t *testing.T) {
	nArts := 2500
	if raceEnabled {
		nArts = 1000
	}
	arts, _ := loadMcCormick(t, nArts)
	opt := DefaultOptions()
	h, err := NewHasher(opt.Perms, opt.NGram, opt.Seed)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(2024))
	var docs []*shards.Document
	var js []float64
	for i, a := range arts {
		w := strings.Fields(a.Text)
		if len(w) < 60 {
			continue
		}
		target := 0.55 + 0.45*r.Float64()
		k := int(float64(len(w)) * (1 - target) / (5 * (1 + target)))
		c := append([]string(nil), w...)
		for e := 0; e < k; e++ {
			c[r.Intn(len(c))] = fmt.Sprintf("repl%d", r.Intn(1e9))
		}
		copyText := strings.Join(c, " ")
		docs = append(docs, &shards.Document{ID: fmt.Sprintf("p%04d-a", i), Source: "m", Text: a.Text},
			&shards.Document{ID: fmt.Sprintf("p%04d-b", i), Source: "m", Text: copyText})
		js = append(js, trueJaccard(h, a.Text, copyText))
	}
	res := stagedDedup(t, docs, opt, 2, 4, "")
	cluster := map[int64]int{}
	for ci, c := range res.Clusters {
		for _, m := range c.Members {
			cluster[m] = ci + 1
		}
	}
	edges := []float64{0, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.01}
	n := make([]int, len(edges)-1)
	dup := make([]int, len(edges)-1)
	for p, j := range js {
		b := 0
		for b+1 < len(edges)-1 && j >= edges[b+1] {
			b++
		}
		n[b]++
		if c := cluster[int64(2*p)]; c != 0 && c == cluster[int64(2*p+1)] {
			dup[b]++
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n| true Jaccard | pairs | marked duplicate |\n|---|---|---|\n")
	for b := range n {
		share := 0.0
		if n[b] > 0 {
			share = 100 * float64(dup[b]) / float64(n[b])
		}
		fmt.Fprintf(&sb, "| %.2f-%.2f | %d | %.1f %% |\n", edges[b], min(edges[b+1], 1), n[b], share)
	}
	t.Log(sb.String())
	low, high := dup[0]+dup[1]+dup[2], dup[7]+dup[8]
	if float64(low) > 0.02*float64(n[0]+n[1]+n[2]) {
		t.Errorf("%d of %d pairs below 0.70 marked duplicate", low, n[0]+n[1]+n[2])
	}
	if float64(high) < 0.97*float64(n[7]+n[8]) {
		t.Errorf("%d of %d pairs at or above 0.90 marked duplicate", high, n[7]+n[8])
	}
}
