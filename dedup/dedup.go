package dedup

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"sync"

	lsh "github.com/ekzhu/minhash-lsh"
	"github.com/smelt-dev/smelt/shards"
	"github.com/zeebo/xxh3"
)

// Drop reasons dedup produces.
const (
	ReasonExact   = "dedup:exact"
	ReasonURL     = "dedup:url"
	ReasonMinHash = "dedup:minhash"
	// ReasonRepeatedID drops a later occurrence of a document id already
	// seen earlier in the input (the same dump ingested twice, say),
	// whatever its text; DupOf is the id itself. Only the first occurrence
	// takes part in dedup.
	ReasonRepeatedID = "dedup:repeated_id"
)

// Reasons lists every drop reason of the stage.
var Reasons = []string{ReasonExact, ReasonURL, ReasonMinHash, ReasonRepeatedID}

// Scopes of a dedup decision.
const (
	// ScopeGlobal deduplicates across all sources.
	ScopeGlobal = "global"
	// ScopeSource only deduplicates documents of the same source.
	ScopeSource = "source"
)

// Options configure deduplication. DefaultOptions gives the defaults; zero
// Bands and Rows mean "derived from Threshold" (see BandsRows).
type Options struct {
	// Exact drops documents whose normalised text equals a kept one's.
	Exact bool `json:"exact"`
	// MinHash drops near duplicates found by MinHash LSH.
	MinHash bool `json:"minhash"`
	// URL drops documents whose URL equals a kept one's.
	URL bool `json:"url"`
	// NGram is the shingle size in words.
	NGram int `json:"ngram"`
	// Perms is the number of MinHash permutations (signature length).
	Perms int `json:"perms"`
	// Bands x Rows is the LSH banding; Bands*Rows <= Perms.
	Bands int `json:"bands"`
	Rows  int `json:"rows"`
	// Threshold is the estimated Jaccard similarity at or above which a
	// candidate pair counts as duplicate.
	Threshold float64 `json:"threshold"`
	// Seed draws the permutations. Runs that share a store must share it.
	Seed uint64 `json:"seed"`
	// Scope is ScopeGlobal or ScopeSource.
	Scope string `json:"scope"`
}

// DefaultOptions are exact and MinHash dedup with 112 permutations over word
// 5-grams, 14 bands of 8 rows, threshold 0.8, global scope.
func DefaultOptions() Options {
	return Options{Exact: true, MinHash: true, NGram: 5, Perms: 112, Bands: 14, Rows: 8,
		Threshold: 0.8, Seed: 1, Scope: ScopeGlobal}
}

// Validate checks the options and fills Bands and Rows from Threshold when
// both are zero.
func (o *Options) Validate() error {
	if !o.Exact && !o.MinHash && !o.URL {
		return fmt.Errorf("dedup: nothing to do: enable exact, minhash or url dedup")
	}
	switch o.Scope {
	case "":
		o.Scope = ScopeGlobal
	case ScopeGlobal, ScopeSource:
	default:
		return fmt.Errorf("dedup: scope %q: want %q or %q", o.Scope, ScopeGlobal, ScopeSource)
	}
	if !o.MinHash {
		return nil
	}
	if o.Perms < 1 || o.Perms > 1024 {
		return fmt.Errorf("dedup: %d permutations: want 1..1024", o.Perms)
	}
	if o.NGram < 1 || o.NGram > 64 {
		return fmt.Errorf("dedup: n-gram size %d: want 1..64", o.NGram)
	}
	if !(o.Threshold > 0 && o.Threshold <= 1) {
		return fmt.Errorf("dedup: threshold %v: want (0, 1]", o.Threshold)
	}
	if o.Bands == 0 && o.Rows == 0 {
		o.Bands, o.Rows = BandsRows(o.Perms, o.Threshold)
	}
	if o.Bands < 1 || o.Rows < 1 || o.Bands*o.Rows > o.Perms {
		return fmt.Errorf("dedup: %d bands x %d rows: want both >= 1 and bands*rows <= perms (%d)", o.Bands, o.Rows, o.Perms)
	}
	if o.Rows > 64 {
		return fmt.Errorf("dedup: %d rows per band: at most 64", o.Rows)
	}
	return nil
}

// Sketch is what dedup keeps of one document: hashes and the MinHash
// signature. Computing it is the expensive, parallel part of pass 1.
type Sketch struct {
	// Exact is the 128-bit xxh3 of the normalised text (salted by the
	// source under ScopeSource).
	Exact [2]uint64
	// URL is the hash of the URL, 0 when there is none or URL dedup is off.
	URL uint64
	// Sig is the MinHash signature, nil when the text has no words or
	// MinHash is off; Bands its LSH band keys.
	Sig   []uint64
	Bands []uint64
}

// normBufs recycles the buffers that normalised text is hashed from.
var normBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// Sketcher computes document sketches; it is safe for concurrent use.
type Sketcher struct {
	opt Options
	h   *Hasher
}

// NewSketcher validates opt (filling Bands and Rows) and returns a sketcher.
func NewSketcher(opt *Options) (*Sketcher, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	s := &Sketcher{opt: *opt}
	if opt.MinHash {
		h, err := NewHasher(opt.Perms, opt.NGram, opt.Seed)
		if err != nil {
			return nil, err
		}
		s.h = h
	}
	return s, nil
}

// Hasher returns the MinHash hasher (nil when MinHash is off).
func (s *Sketcher) Hasher() *Hasher { return s.h }

func (s *Sketcher) salt(d *shards.Document) uint64 {
	if s.opt.Scope == ScopeSource {
		return xxh3.HashString(d.Source) | 1
	}
	return 0
}

// Sketch computes the sketch of d.
func (s *Sketcher) Sketch(d *shards.Document) Sketch {
	var k Sketch
	salt := s.salt(d)
	if s.opt.Exact {
		bp := normBufs.Get().(*[]byte)
		buf := appendNormalized((*bp)[:0], d.Text)
		h := xxh3.Hash128(buf)
		*bp = buf
		normBufs.Put(bp)
		k.Exact = [2]uint64{h.Hi, h.Lo ^ salt}
	}
	if s.opt.URL && d.URL != "" {
		k.URL = xxh3.HashString(d.URL) ^ salt
		if k.URL == 0 {
			k.URL = 1
		}
	}
	if s.h != nil {
		sig := make([]uint64, s.opt.Perms)
		if s.h.SignatureInto(sig, d.Text) {
			k.Sig = sig
			k.Bands = BandHashes(make([]uint64, 0, s.opt.Bands), sig, s.opt.Bands, s.opt.Rows, salt)
		}
	}
	return k
}

// Deduper collects the sketches of all documents of a run (pass 1, in input
// order) and then decides, globally, which documents are duplicates.
type Deduper struct {
	opt     Options
	ids     []string
	quality []float64 // NaN when the document has no quality score
	exact   [][2]uint64
	url     []uint64
	sigOf   []int32 // document -> its signature index, -1 without one
	sigs    []uint64
	bands   []uint64
	sigDoc  []int32 // signature index -> document
	seenID  map[string]int32
	// added counts every document added, repeats included: the next
	// document's input position.
	added int64
	// repeats are the input positions of later occurrences of an id, in
	// increasing order; they are not indexed.
	repeats []int64
	first   map[[2]uint64]int32 // exact hash -> first document
	firstU  map[uint64]int32    // url hash -> first document
	uf      unionFind
	// keptBefore marks documents of this input that the store already
	// holds under the same id (a rerun over the same crawl).
	keptBefore map[int32]bool
	// Counters of the decision, for the report.
	exactPairs, urlPairs, candidatePairs, verifiedPairs int64
	storeExact, storeURL, storeMinHash                  int64
}

// NewDeduper returns an empty deduper; opt must be the options the sketches
// were made with (validated by NewSketcher).
func NewDeduper(opt Options) *Deduper {
	return &Deduper{opt: opt, seenID: map[string]int32{}, keptBefore: map[int32]bool{}, first: map[[2]uint64]int32{}, firstU: map[uint64]int32{}}
}

// Len is the number of documents added.
func (d *Deduper) Len() int { return len(d.ids) }

// Add records document doc with its sketch; documents must be added in
// input order. The decision is keyed by id: a later occurrence of an id
// already added is only recorded by its input position (see
// Result.Repeated), to be dropped with ReasonRepeatedID, and takes no part
// in dedup.
func (d *Deduper) Add(doc *shards.Document, k Sketch) error {
	if d.added >= math.MaxInt32-1 { // positions must fit Cluster.Members
		return fmt.Errorf("dedup: more than %d documents in one run", math.MaxInt32-1)
	}
	pos := d.added
	d.added++
	if _, ok := d.seenID[doc.ID]; ok {
		d.repeats = append(d.repeats, pos)
		return nil
	}
	i := int32(len(d.ids))
	d.seenID[doc.ID] = i
	d.ids = append(d.ids, doc.ID)
	q := math.NaN()
	if doc.HasQuality {
		q = doc.Quality
	}
	d.quality = append(d.quality, q)
	d.exact = append(d.exact, k.Exact)
	d.url = append(d.url, k.URL)
	d.uf.add()
	sig := int32(-1)
	if d.opt.Exact {
		if f, ok := d.first[k.Exact]; ok {
			// Same normalised text, so the same words and signature: share it.
			d.uf.union(f, i)
			d.exactPairs++
			sig = d.sigOf[f]
			d.sigOf = append(d.sigOf, sig)
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

func (d *Deduper) addURL(i int32, u uint64) {
	if u == 0 {
		return
	}
	if f, ok := d.firstU[u]; ok {
		d.uf.union(f, i)
		d.urlPairs++
		return
	}
	d.firstU[u] = i
}

func (d *Deduper) sig(s int32) []uint64 {
	p := d.opt.Perms
	return d.sigs[int(s)*p : int(s+1)*p]
}

func (d *Deduper) bandKeys(s int32) []uint64 {
	b := d.opt.Bands
	return d.bands[int(s)*b : int(s+1)*b]
}

// Decision is the verdict on one document that is part of a duplicate
// cluster. Documents outside any cluster have none and are kept.
type Decision struct {
	// Reason is empty for the cluster's survivor, else the drop reason.
	Reason string `json:"reason,omitempty"`
	// Value is the estimated similarity to the survivor ("1" for exact and
	// URL duplicates).
	Value string `json:"value,omitempty"`
	// DupOf is the survivor's id.
	DupOf string `json:"dup_of,omitempty"`
	// Cluster indexes Result.Clusters.
	Cluster int `json:"cluster"`
	// First marks the cluster's first member in input order, so that a
	// per-document pass counts each cluster once.
	First bool `json:"first,omitempty"`
}

// Cluster is one group of duplicates.
type Cluster struct {
	// Survivor is the kept document's id; Stored says it was kept by an
	// earlier run (it is in the store, not in this input).
	Survivor string `json:"survivor"`
	Stored   bool   `json:"stored,omitempty"`
	// Size counts the members, the survivor included.
	Size int `json:"size"`
	// Members are the input ordinals (positions in the whole input) of this
	// run's members.
	Members []int32 `json:"members"`
}

// Result is the global dedup decision of a run.
type Result struct {
	// Decisions holds every document that is in a cluster, by id; for an
	// id that occurs more than once, its first occurrence.
	Decisions map[string]Decision `json:"decisions"`
	// Repeated lists, in increasing order, the input positions of later
	// occurrences of ids seen before in the input: they are dropped with
	// ReasonRepeatedID whatever their decision.
	Repeated []int64 `json:"repeated,omitempty"`
	// Clusters lists the clusters in the order of their first member.
	Clusters []Cluster `json:"clusters"`
	// Summary counts what the decision looked at.
	Summary Summary `json:"summary"`
}

// Summary counts the work of a decision.
type Summary struct {
	Documents      int64 `json:"documents"`
	RepeatedIDs    int64 `json:"repeated_ids,omitempty"`
	Signatures     int64 `json:"signatures"`
	ExactPairs     int64 `json:"exact_pairs"`
	URLPairs       int64 `json:"url_pairs"`
	CandidatePairs int64 `json:"candidate_pairs"`
	VerifiedPairs  int64 `json:"verified_pairs"`
	StoreExact     int64 `json:"store_exact"`
	StoreURL       int64 `json:"store_url"`
	StoreMinHash   int64 `json:"store_minhash"`
	Dropped        int64 `json:"dropped"`
	Bands          int   `json:"bands"`
	Rows           int   `json:"rows"`
}

// IsRepeat reports whether the document at input position i is a later
// occurrence of an id seen before, dropped with ReasonRepeatedID.
func (r *Result) IsRepeat(i int64) bool {
	_, ok := slices.BinarySearch(r.Repeated, i)
	return ok
}

// Dropped reports whether the (first) document with this id is dropped.
func (r *Result) Dropped(id string) bool {
	dec, ok := r.Decisions[id]
	return ok && dec.Reason != ""
}

// Decide finds the duplicate clusters among the documents added and, when
// store is not nil, against the documents an earlier run kept in it. It
// does not change the store (see Deduper.Commit).
func (d *Deduper) Decide(ctx context.Context, store *Store) (*Result, error) {
	n := int32(len(d.ids))
	if d.opt.MinHash && len(d.sigDoc) > 1 {
		if err := d.lshPairs(ctx); err != nil {
			return nil, err
		}
	}
	var stored []*storedDoc
	if store != nil {
		var err error
		if stored, err = d.storePairs(ctx, store); err != nil {
			return nil, err
		}
	}
	// Group members by root, clusters numbered by their first member.
	total := d.uf.len()
	clusterOf := map[int32]int{}
	var members [][]int32
	for i := int32(0); i < int32(total); i++ {
		r := d.uf.find(i)
		c, ok := clusterOf[r]
		if !ok {
			c = len(members)
			clusterOf[r] = c
			members = append(members, nil)
		}
		members[c] = append(members[c], i)
	}
	res := &Result{Decisions: map[string]Decision{}}
	for _, m := range members {
		if len(m) < 2 {
			continue
		}
		ci := len(res.Clusters)
		surv := d.survivor(m, n, stored)
		cl := Cluster{Size: len(m), Stored: surv >= n}
		var survExact [2]uint64
		var survURL uint64
		var survSig []uint64
		if surv >= n {
			sd := stored[surv-n]
			cl.Survivor, survExact, survURL, survSig = sd.ID, sd.Exact, sd.URL, sd.Sig
		} else {
			cl.Survivor, survExact, survURL = d.ids[surv], d.exact[surv], d.url[surv]
			if s := d.sigOf[surv]; s >= 0 {
				survSig = d.sig(s)
			}
		}
		first := true
		for _, i := range m {
			if i >= n {
				continue // a stored document: nothing to route
			}
			cl.Members = append(cl.Members, int32(d.position(i)))
			dec := Decision{Cluster: ci, First: first}
			first = false
			if i != surv {
				dec.DupOf = cl.Survivor
				switch {
				case d.opt.Exact && d.exact[i] == survExact:
					dec.Reason, dec.Value = ReasonExact, "1"
				case d.opt.URL && d.url[i] != 0 && d.url[i] == survURL:
					dec.Reason, dec.Value = ReasonURL, "1"
				default:
					dec.Reason = ReasonMinHash
					if s := d.sigOf[i]; s >= 0 && survSig != nil {
						dec.Value = strconv.FormatFloat(Jaccard(d.sig(s), survSig), 'f', 4, 64)
					}
					if !d.opt.MinHash {
						// Joined only through exact or URL edges with
						// another member: name the edge kind.
						dec.Reason = ReasonURL
						if !d.opt.URL {
							dec.Reason = ReasonExact
						}
						dec.Value = "1"
					}
				}
				res.Summary.Dropped++
			}
			res.Decisions[d.ids[i]] = dec
		}
		res.Clusters = append(res.Clusters, cl)
	}
	if len(d.repeats) > 0 {
		res.Repeated = slices.Clone(d.repeats)
		res.Summary.RepeatedIDs = int64(len(d.repeats))
		res.Summary.Dropped += int64(len(d.repeats))
	}
	res.Summary.Documents = d.added
	res.Summary.Signatures = int64(len(d.sigDoc))
	res.Summary.ExactPairs = d.exactPairs
	res.Summary.URLPairs = d.urlPairs
	res.Summary.CandidatePairs = d.candidatePairs
	res.Summary.VerifiedPairs = d.verifiedPairs
	res.Summary.StoreExact, res.Summary.StoreURL, res.Summary.StoreMinHash = d.storeExact, d.storeURL, d.storeMinHash
	res.Summary.Bands, res.Summary.Rows = d.opt.Bands, d.opt.Rows
	return res, nil
}

// position is the input position of indexed document i: i plus the
// repeats before it.
func (d *Deduper) position(i int32) int64 {
	p := int64(i)
	for k := 0; ; {
		// Repeats at or before p; p grows with k until it is stable (the
		// least such p is not itself a repeat).
		k2, _ := slices.BinarySearch(d.repeats, p+1)
		if k2 == k {
			return p
		}
		k = k2
		p = int64(i) + int64(k)
	}
}

// survivor picks the member to keep: a document an earlier run kept (in
// the store, or this input's copy of it; the smallest id), else the highest
// quality score (scored beats unscored), then the smallest id.
func (d *Deduper) survivor(m []int32, n int32, stored []*storedDoc) int32 {
	id := func(i int32) string {
		if i >= n {
			return stored[i-n].ID
		}
		return d.ids[i]
	}
	before := func(i int32) bool { return i >= n || d.keptBefore[i] }
	best := m[0]
	for _, i := range m[1:] {
		bi, bb := before(i), before(best)
		if bi != bb {
			if bi {
				best = i
			}
			continue
		}
		if !bi {
			qi, qb := d.quality[i], d.quality[best]
			if math.IsNaN(qi) != math.IsNaN(qb) {
				if !math.IsNaN(qi) {
					best = i
				}
				continue
			}
			if !math.IsNaN(qi) && qi != qb {
				if qi > qb {
					best = i
				}
				continue
			}
		}
		if id(i) < id(best) {
			best = i
		}
	}
	return best
}

// lshIndex builds an ekzhu/minhash-lsh index over the band keys. The index
// takes []uint64 signatures and splits them into l bands of k values; fed
// one pre-hashed key per band with k = 1 and l = Bands, its buckets are
// exactly the Bands x Rows banding of the full signatures (and hold 8-byte
// keys instead of 8*Rows-byte ones).
func newBandIndex(bands int) (*lsh.MinhashLSH, error) {
	// A threshold of 0.01 makes the library's own optimiser choose k = 1,
	// l = numHash; checked, since Params is the only way to see it.
	idx := lsh.NewMinhashLSH64(bands, 0.01)
	if k, l := idx.Params(); k != 1 || l != bands {
		return nil, fmt.Errorf("dedup: LSH index for %d bands has k=%d l=%d, want k=1 l=%d", bands, k, l, bands)
	}
	return idx, nil
}

// lshPairs unions every candidate pair whose estimated Jaccard similarity
// reaches the threshold.
func (d *Deduper) lshPairs(ctx context.Context) error {
	idx, err := newBandIndex(d.opt.Bands)
	if err != nil {
		return err
	}
	for s := range d.sigDoc {
		idx.Add(int32(s), d.bandKeys(int32(s)))
	}
	idx.Index()
	// Queries only read the index: they run on all cores, each worker over
	// a contiguous range of signatures, and the verified pairs are joined
	// afterwards in range order (union-find's result does not depend on
	// the order anyway).
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
						continue // each pair once, from its smaller end
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
			d.uf.union(d.sigDoc[pr[0]], d.sigDoc[pr[1]])
		}
	}
	return nil
}

// Commit adds the documents res keeps to store, so that later runs
// deduplicate against them; it syncs before returning. Committing the same
// run twice is harmless.
func (d *Deduper) Commit(store *Store, res *Result) error {
	var docs []*storedDoc
	flush := func() error {
		err := store.put(docs)
		docs = docs[:0]
		return err
	}
	for i, id := range d.ids {
		if res.Dropped(id) {
			continue
		}
		sd := &storedDoc{ID: id, Exact: d.exact[i], URL: d.url[i]}
		if s := d.sigOf[i]; s >= 0 {
			sd.Sig, sd.Bands = d.sig(s), d.bandKeys(s)
		}
		docs = append(docs, sd)
		if len(docs) >= 10000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return store.sync()
}

// LargestClusters returns the indexes of up to k clusters, largest first
// (ties by survivor id).
func (r *Result) LargestClusters(k int) []int {
	idx := make([]int, len(r.Clusters))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		ca, cb := r.Clusters[a], r.Clusters[b]
		if c := cmp.Compare(cb.Size, ca.Size); c != 0 {
			return c
		}
		return cmp.Compare(ca.Survivor, cb.Survivor)
	})
	if len(idx) > k {
		idx = idx[:k]
	}
	return idx
}

// unionFind is a disjoint-set forest over int32 nodes (path halving, union
// by size).
type unionFind struct {
	parent []int32
	size   []int32
}

func (u *unionFind) add() int32 {
	i := int32(len(u.parent))
	u.parent = append(u.parent, i)
	u.size = append(u.size, 1)
	return i
}

func (u *unionFind) len() int { return len(u.parent) }

func (u *unionFind) find(i int32) int32 {
	for u.parent[i] != i {
		u.parent[i] = u.parent[u.parent[i]]
		i = u.parent[i]
	}
	return i
}

func (u *unionFind) union(a, b int32) {
	a, b = u.find(a), u.find(b)
	if a == b {
		return
	}
	if u.size[a] < u.size[b] {
		a, b = b, a
	}
	u.parent[b] = a
	u.size[a] += u.size[b]
}
