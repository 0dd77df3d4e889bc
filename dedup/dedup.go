package dedup

import (
	"cmp"
	"fmt"
	"slices"
	"sync"

	"github.com/smelt-dev/smelt/shards"
	"github.com/zeebo/xxh3"
)

// Drop reasons dedup produces.
const (
	ReasonExact   = "dedup:exact"
	ReasonURL     = "dedup:url"
	ReasonMinHash = "dedup:minhash"
)

// Reasons lists every drop reason of the stage.
var Reasons = []string{ReasonExact, ReasonURL, ReasonMinHash}

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
	// Verify is "" (every member of a cluster is dropped) or
	// VerifySurvivor: a near duplicate is dropped only when its estimated
	// similarity to its cluster's survivor reaches Threshold, so a chain
	// a~b~...~f never drops a document far from the one kept.
	Verify string `json:"verify,omitempty" yaml:"verify,omitempty"`
}

// VerifySurvivor is Options.Verify's value that checks each member
// against its survivor.
const VerifySurvivor = "survivor"

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
	switch o.Verify {
	case "", VerifySurvivor:
	default:
		return fmt.Errorf("dedup: verify %q: want %q or nothing", o.Verify, VerifySurvivor)
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

// Decision is the verdict on one document that is part of a duplicate
// cluster. Documents outside any cluster have none and are kept.
type Decision struct {
	// Reason is empty for a kept member (the survivor, or with verify
	// survivor a member too far from it), else the drop reason.
	Reason string `json:"reason,omitempty"`
	// Value is the estimated similarity to the survivor ("1" for exact and
	// URL duplicates).
	Value string `json:"value,omitempty"`
	// DupOf is the survivor's id.
	DupOf string `json:"dup_of,omitempty"`
	// Similarity is, for a member kept by verify survivor, its estimated
	// similarity to the survivor.
	Similarity string `json:"similarity,omitempty"`
	// Cluster indexes Result.Clusters; in the decision files (one per
	// input directory) it is the input position of the cluster's first
	// member, the same whatever the cluster step's partitioning.
	Cluster int `json:"cluster"`
	// First marks the cluster's first member in input order, so that a
	// per-document pass counts each cluster once; Size is then the
	// cluster's size.
	First bool `json:"first,omitempty"`
	Size  int  `json:"size,omitempty"`
}

// Cluster is one group of duplicates.
type Cluster struct {
	// Survivor is the kept document's id; Stored says it was kept by an
	// earlier run (it is in the store, not in this input).
	Survivor string `json:"survivor"`
	Stored   bool   `json:"stored,omitempty"`
	// Size counts the members, the survivor and stored members included.
	Size int `json:"size"`
	// Members are the input positions (0-based, over the whole input in
	// order) of this run's members.
	Members []int64 `json:"members"`
	// decs are the members' decisions while ClusterTask picks the
	// largest clusters.
	decs []Decision
}

// Result is the global dedup decision of a run.
type Result struct {
	// Decisions holds every document of this run that is in a cluster, by
	// input position.
	Decisions map[int64]Decision `json:"decisions"`
	// Clusters lists the clusters in the order of their first member.
	Clusters []Cluster `json:"clusters"`
	// Summary counts what the decision looked at.
	Summary Summary `json:"summary"`
}

// Summary counts the work of a decision.
type Summary struct {
	Documents      int64 `json:"documents"`
	DataBytes      int64 `json:"data_bytes,omitempty"`
	Signatures     int64 `json:"signatures"`
	ExactPairs     int64 `json:"exact_pairs"`
	URLPairs       int64 `json:"url_pairs"`
	CandidatePairs int64 `json:"candidate_pairs"`
	VerifiedPairs  int64 `json:"verified_pairs"`
	// LargestBucket is the most documents that shared one key.
	LargestBucket int64 `json:"largest_bucket,omitempty"`
	// StoreDocuments is what the store held for this run; StoreExact,
	// StoreURL and StoreMinHash count this run's documents dropped as
	// duplicates of a stored one, each once, by its reason.
	StoreDocuments int64 `json:"store_documents,omitempty"`
	StoreExact     int64 `json:"store_exact"`
	StoreURL       int64 `json:"store_url"`
	StoreMinHash   int64 `json:"store_minhash"`
	// VerifyKept counts members kept by verify survivor.
	VerifyKept int64 `json:"verify_kept,omitempty"`
	// Clusters counts the clusters (Result.Clusters may hold only the
	// largest).
	Clusters int64 `json:"clusters"`
	Dropped  int64 `json:"dropped"`
	Bands    int   `json:"bands"`
	Rows     int   `json:"rows"`
}

func firstPos(c Cluster) int64 {
	if len(c.Members) == 0 {
		return -1
	}
	return c.Members[0]
}

// LargestClusters returns the indexes of up to k clusters, largest first
// (ties by survivor id, then by first member).
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
		if c := cmp.Compare(ca.Survivor, cb.Survivor); c != 0 {
			return c
		}
		return cmp.Compare(firstPos(ca), firstPos(cb)) // ids need not be unique
	})
	if len(idx) > k {
		idx = idx[:k]
	}
	return idx
}
