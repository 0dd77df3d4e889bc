package dedup

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"

	lsh "github.com/ekzhu/minhash-lsh"
	"github.com/smelt-dev/smelt/shards"
)

// memDeduper is the in-memory dedup smelt had before the staged steps: one
// process holds every signature in an ekzhu/minhash-lsh index, queries
// every document against it and joins all verified candidate pairs. It is
// kept, in tests only, as the reference the staged steps must equal on the
// labelled tests and as the peer of the side-by-side benchmark.
type memDeduper struct {
	opt     Options
	ids     []string
	quality []float64
	exact   [][2]uint64
	url     []uint64
	sigOf   []int32
	sigs    []uint64
	bands   []uint64
	sigDoc  []int32
	first   map[[2]uint64]int32
	firstU  map[uint64]int32
	uf      unionFind // the staged cluster step's, over document numbers
	// counters
	candidatePairs, verifiedPairs int64
}

func newMemDeduper(opt Options) *memDeduper {
	return &memDeduper{opt: opt, first: map[[2]uint64]int32{}, firstU: map[uint64]int32{}}
}

func (d *memDeduper) add(doc *shards.Document, k Sketch) error {
	if len(d.ids) >= math.MaxInt32-1 {
		return fmt.Errorf("dedup: more than %d documents in one run", math.MaxInt32-1)
	}
	i := int32(len(d.ids))
	d.ids = append(d.ids, doc.ID)
	q := math.NaN()
	if doc.HasQuality {
		q = doc.Quality
	}
	d.quality = append(d.quality, q)
	d.exact = append(d.exact, k.Exact)
	d.url = append(d.url, k.URL)
	d.uf.add(Ref(i))
	sig := int32(-1)
	if d.opt.Exact {
		if f, ok := d.first[k.Exact]; ok {
			d.uf.union(int(f), int(i))
			d.sigOf = append(d.sigOf, d.sigOf[f])
			d.addURL(i, k.URL)
			return nil
		}
		d.first[k.Exact] = i
	}
	if k.Sig != nil {
		sig = int32(len(d.sigDoc))
		d.sigs = append(d.sigs, k.Sig...)
		d.bands = append(d.bands, k.Bands...)
		d.sigDoc = append(d.sigDoc, i)
	}
	d.sigOf = append(d.sigOf, sig)
	d.addURL(i, k.URL)
	return nil
}

func (d *memDeduper) addURL(i int32, u uint64) {
	if u == 0 {
		return
	}
	if f, ok := d.firstU[u]; ok {
		d.uf.union(int(f), int(i))
		return
	}
	d.firstU[u] = i
}

func (d *memDeduper) sig(s int32) []uint64 { return d.sigs[int(s)*d.opt.Perms : int(s+1)*d.opt.Perms] }
func (d *memDeduper) bandKeys(s int32) []uint64 {
	return d.bands[int(s)*d.opt.Bands : int(s+1)*d.opt.Bands]
}

// memCluster is one cluster of the in-memory decision: its members' input
// positions in order and the survivor's position.
type memCluster struct {
	Members  []int64
	Survivor int64
}

// decide returns the clusters (of two or more members) in the order of
// their first member.
func (d *memDeduper) decide(ctx context.Context) ([]memCluster, error) {
	if d.opt.MinHash && len(d.sigDoc) > 1 {
		if err := d.lshPairs(ctx); err != nil {
			return nil, err
		}
	}
	clusterOf := map[int32]int{}
	var members [][]int32
	for i := int32(0); i < int32(len(d.ids)); i++ {
		r := int32(d.uf.find(int(i)))
		c, ok := clusterOf[r]
		if !ok {
			c = len(members)
			clusterOf[r] = c
			members = append(members, nil)
		}
		members[c] = append(members[c], i)
	}
	var out []memCluster
	for _, m := range members {
		if len(m) < 2 {
			continue
		}
		// The survivor rule is the staged cluster step's (which the old
		// code had, without the reference tie-break).
		refs := make([]Ref, len(m))
		metas := make([]*docMeta, len(m))
		for k, i := range m {
			refs[k], metas[k] = Ref(i), &docMeta{Quality: d.quality[i], ID: d.ids[i]}
		}
		best := m[survivor(refs, metas)]
		c := memCluster{Survivor: int64(best)}
		for _, i := range m {
			c.Members = append(c.Members, int64(i))
		}
		out = append(out, c)
	}
	return out, nil
}

func (d *memDeduper) lshPairs(ctx context.Context) error {
	idx := lsh.NewMinhashLSH64(d.opt.Bands, 0.01)
	if k, l := idx.Params(); k != 1 || l != d.opt.Bands {
		return fmt.Errorf("dedup: LSH index for %d bands has k=%d l=%d", d.opt.Bands, k, l)
	}
	for s := range d.sigDoc {
		idx.Add(int32(s), d.bandKeys(int32(s)))
	}
	idx.Index()
	workers := min(runtime.GOMAXPROCS(0), max(1, len(d.sigDoc)/1024))
	type part struct {
		pairs      [][2]int32
		candidates int64
		err        error
	}
	parts := make([]part, workers)
	var wg sync.WaitGroup
	chunk := (len(d.sigDoc) + workers - 1) / workers
	for w := range parts {
		wg.Add(1)
		go func(p *part, lo, hi int) {
			defer wg.Done()
			for s := lo; s < hi; s++ {
				if s%4096 == 0 {
					if p.err = ctx.Err(); p.err != nil {
						return
					}
				}
				a := d.sig(int32(s))
				for _, key := range idx.Query(d.bandKeys(int32(s))) {
					c := key.(int32)
					if int(c) <= s {
						continue
					}
					p.candidates++
					if Jaccard(a, d.sig(c)) >= d.opt.Threshold {
						p.pairs = append(p.pairs, [2]int32{int32(s), c})
					}
				}
			}
		}(&parts[w], min(w*chunk, len(d.sigDoc)), min((w+1)*chunk, len(d.sigDoc)))
	}
	wg.Wait()
	for _, p := range parts {
		if p.err != nil {
			return p.err
		}
		d.candidatePairs += p.candidates
		d.verifiedPairs += int64(len(p.pairs))
		for _, pr := range p.pairs {
			d.uf.union(int(d.sigDoc[pr[0]]), int(d.sigDoc[pr[1]]))
		}
	}
	return nil
}

// memDedup runs the in-memory reference over docs.
func memDedup(docs []*shards.Document, opt Options) ([]memCluster, *memDeduper, error) {
	sk, err := NewSketcher(&opt)
	if err != nil {
		return nil, nil, err
	}
	d := newMemDeduper(opt)
	for _, doc := range docs {
		if err := d.add(doc, sk.Sketch(doc)); err != nil {
			return nil, nil, err
		}
	}
	c, err := d.decide(context.Background())
	return c, d, err
}
