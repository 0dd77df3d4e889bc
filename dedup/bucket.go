package dedup

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/smelt-dev/smelt/shards"
)

// Files of a bucket task's directory.
const (
	pairsFile    = "pairs.bin"    // text pairs, 16 bytes each: two little-endian refs
	urlPairsFile = "urlpairs.bin" // URL pairs, the same format
	bucketDone   = "bucket.json"
)

// bucketInfo is bucketDone's content, written last.
type bucketInfo struct {
	Fingerprint string `json:"fingerprint"`
	// Pairs written: exact and URL pairs (each member with its key's first
	// document) and verified MinHash pairs.
	Pairs          int64 `json:"pairs"`
	ExactPairs     int64 `json:"exact_pairs"`
	URLPairs       int64 `json:"url_pairs"`
	CandidatePairs int64 `json:"candidate_pairs"`
	VerifiedPairs  int64 `json:"verified_pairs"`
	// Records merged, and the largest number of documents sharing a key.
	Records  int64 `json:"records"`
	MaxGroup int64 `json:"max_group"`
}

// BucketConfig is one bucket task: one partition of the key space.
type BucketConfig struct {
	// Sketches are this run's sketch task directories, by task.
	Sketches []string
	// Snapshot, if set, is the store generation to deduplicate against.
	Snapshot *Snapshot
	// Part of Parts is the partition.
	Part, Parts int
	// Dir receives the task's files.
	Dir string
	// Options are the dedup settings (validated).
	Options Options
	// Window is how many of the distinct signatures before it (in the
	// bucket's signature order) each member of an LSH bucket is compared
	// with (0 = BucketWindow).
	Window int
}

// BucketWindow is the default comparison window of an LSH bucket: a
// bucket of at most BucketWindow+1 distinct signatures is compared all
// pairs (up to pairs already joined), a larger one costs at most
// BucketWindow comparisons a member.
const BucketWindow = 64

// maxFanIn is the most record files one merge reads at once; more are
// merged in two levels, so that a task's open files stay bounded however
// many sketch runs and store segments it reads.
const maxFanIn = 64

// BucketTask runs one bucket task: a k-way merge of the sorted records of
// its partition from every sketch task (and store segment), emitting
// pairs. Documents sharing an exact key pair with the key's first
// document (pairs.bin), documents sharing a URL key likewise (urlpairs.bin,
// kept apart: a URL match never joins texts). The documents of an LSH
// bucket arrive sorted by their signature's digest, so in an order that
// depends only on the data: identical signatures are joined at once, and
// each other signature is compared with the distinct signatures of the
// Window before it that are not yet joined to it in this bucket; a pair
// whose estimated Jaccard similarity reaches the threshold is written and
// joins the two. A bucket of at most Window+1 distinct signatures thus
// yields exactly the connected components of its all-pairs similarity
// graph; a larger (hot) one costs at most Window comparisons a member,
// never k^2. Every key lies in exactly one partition, so the pairs do not
// depend on the number of partitions, and nothing depends on input order
// but which of identical documents names a pair.
func BucketTask(ctx context.Context, cfg BucketConfig) (*bucketInfo, error) {
	opt := cfg.Options
	window := cfg.Window
	if window <= 0 {
		window = BucketWindow
	}
	fp, err := shards.Fingerprint("dedup-bucket", struct {
		O      Options `json:"o"`
		Part   int     `json:"part"`
		Parts  int     `json:"parts"`
		Window int     `json:"window"`
		Gen    string  `json:"gen"`
	}{opt, cfg.Part, cfg.Parts, window, cfg.Snapshot.identity()}, sketchFingerprints(cfg.Sketches)...)
	if err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(filepath.Join(cfg.Dir, bucketDone)); err == nil {
		var info bucketInfo
		if json.Unmarshal(b, &info) == nil && info.Fingerprint == fp {
			return &info, nil
		}
	}
	if err := os.RemoveAll(cfg.Dir); err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	var srcs []recordSource
	for t, dir := range cfg.Sketches {
		info, err := readSketchInfo(dir)
		if err != nil {
			return nil, fmt.Errorf("dedup: sketch task %d is not finished: %w", t, err)
		}
		if info.Parts != cfg.Parts {
			return nil, fmt.Errorf("dedup: sketch task %d was cut into %d partitions, not %d", t, info.Parts, cfg.Parts)
		}
		for run := 0; run < info.Runs; run++ {
			srcs = append(srcs, recordSource{path: filepath.Join(dir, runFile(run, cfg.Part))})
		}
	}
	if s := cfg.Snapshot; s != nil {
		srcs = append(srcs, s.partSources(cfg.Part, cfg.Parts)...)
	}
	readers, err := openSources(ctx, srcs, filepath.Join(cfg.Dir, "merge"))
	if err != nil {
		return nil, err
	}
	ds := newDocSet(opt.Perms, cfg.Sketches, cfg.Snapshot)
	defer ds.close()

	info := &bucketInfo{Fingerprint: fp}
	textOut, err := newPairWriter(filepath.Join(cfg.Dir, pairsFile))
	if err != nil {
		closeReaders(readers)
		return nil, err
	}
	defer textOut.abort()
	urlOut, err := newPairWriter(filepath.Join(cfg.Dir, urlPairsFile))
	if err != nil {
		closeReaders(readers)
		return nil, err
	}
	defer urlOut.abort()
	pair := func(w *pairWriter, a, b Ref) error {
		info.Pairs++
		return w.write(a, b)
	}
	lb := newLSHBucket(opt, window, ds)
	var firstRef Ref
	var group int64
	visit := func(r *record, first bool) error {
		info.Records++
		if info.Records%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if first {
			info.MaxGroup = max(info.MaxGroup, group)
			group = 0
			firstRef = r.ref
		}
		group++
		switch r.tag >> 8 {
		case kindExact, kindURL:
			if first || (firstRef.Stored() && r.ref.Stored()) {
				return nil // both kept before: nothing to decide
			}
			if r.tag>>8 == kindExact {
				info.ExactPairs++
				return pair(textOut, firstRef, r.ref)
			}
			info.URLPairs++
			return pair(urlOut, firstRef, r.ref)
		}
		if first {
			lb.reset()
		}
		return lb.add(r, func(a, b Ref) error { return pair(textOut, a, b) })
	}
	if err := mergeRecords(readers, visit); err != nil {
		return nil, err
	}
	info.MaxGroup = max(info.MaxGroup, group)
	info.CandidatePairs, info.VerifiedPairs = lb.candidates, lb.verified
	if err := textOut.commit(); err != nil {
		return nil, err
	}
	if err := urlOut.commit(); err != nil {
		return nil, err
	}
	_ = os.RemoveAll(filepath.Join(cfg.Dir, "merge"))
	b, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	if err := shards.WriteFileAtomic(filepath.Join(cfg.Dir, bucketDone), b); err != nil {
		return nil, err
	}
	return info, nil
}

// lshBucket compares the members of one LSH bucket, as they come in
// signature-digest order.
type lshBucket struct {
	opt     Options
	window  int
	ds      *docSet
	scratch []byte
	// The bucket's distinct signatures so far: a union-find over them
	// (joined in this bucket) and a ring of the last window of them.
	parent []int32
	ring   []bucketNode
	n      int
	// The digest of the last distinct signature and its first member.
	lastDigest uint64
	lastRef    Ref

	candidates, verified int64
}

type bucketNode struct {
	id     int32
	ref    Ref
	sig    []uint64
	loaded bool
	has    bool
}

func newLSHBucket(opt Options, window int, ds *docSet) *lshBucket {
	b := &lshBucket{opt: opt, window: window, ds: ds, scratch: make([]byte, 8*opt.Perms), ring: make([]bucketNode, window+1)}
	for i := range b.ring {
		b.ring[i].sig = make([]uint64, opt.Perms)
	}
	return b
}

func (b *lshBucket) reset() {
	b.parent = b.parent[:0]
	b.n = 0
	b.lastDigest = 0
}

func (b *lshBucket) find(i int32) int32 {
	for b.parent[i] != i {
		b.parent[i] = b.parent[b.parent[i]]
		i = b.parent[i]
	}
	return i
}

func (b *lshBucket) load(nd *bucketNode) error {
	if nd.loaded {
		return nil
	}
	nd.loaded = true
	var err error
	nd.has, err = b.ds.sig(nd.ref, nd.sig, b.scratch)
	return err
}

// add takes the next member of the bucket and calls pair for every pair
// that joins two of its parts.
func (b *lshBucket) add(r *record, pair func(a, c Ref) error) error {
	if b.n > 0 && r.k2 == b.lastDigest {
		// The same signature as the previous member: estimated
		// similarity 1, joined to it.
		if b.lastRef.Stored() && r.ref.Stored() {
			return nil
		}
		b.verified++
		return pair(b.lastRef, r.ref)
	}
	id := int32(b.n)
	b.parent = append(b.parent, id)
	cur := &b.ring[b.n%len(b.ring)]
	// cur is about to be overwritten: the ring's oldest node leaves, the
	// new one is compared with the others.
	cur.id, cur.ref, cur.loaded = id, r.ref, false
	b.lastDigest, b.lastRef = r.k2, r.ref
	b.n++
	for k := 1; k < min(b.n, len(b.ring)); k++ {
		o := &b.ring[(b.n-1-k)%len(b.ring)]
		if o.ref.Stored() && r.ref.Stored() {
			continue
		}
		ro, rc := b.find(o.id), b.find(id)
		if ro == rc {
			continue
		}
		if err := b.load(cur); err != nil {
			return err
		}
		if err := b.load(o); err != nil {
			return err
		}
		if !cur.has || !o.has {
			continue
		}
		b.candidates++
		if Jaccard(o.sig, cur.sig) >= b.opt.Threshold {
			b.verified++
			b.parent[ro] = rc
			if err := pair(o.ref, r.ref); err != nil {
				return err
			}
		}
	}
	return nil
}

// pairWriter writes a pairs file atomically: 16 bytes a pair.
type pairWriter struct {
	f  *shards.AtomicFile
	w  *bufio.Writer
	pb [16]byte
}

func newPairWriter(path string) (*pairWriter, error) {
	f, err := shards.CreateAtomic(path)
	if err != nil {
		return nil, err
	}
	return &pairWriter{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

func (w *pairWriter) write(a, b Ref) error {
	binary.LittleEndian.PutUint64(w.pb[0:], uint64(a))
	binary.LittleEndian.PutUint64(w.pb[8:], uint64(b))
	_, err := w.w.Write(w.pb[:])
	return err
}

func (w *pairWriter) commit() error {
	if err := w.w.Flush(); err != nil {
		return err
	}
	return w.f.Commit()
}

func (w *pairWriter) abort() { w.f.Abort() }

// recordSource is one sorted record file a merge reads: a sketch run, or
// a store segment's part (its references mapped to stored ones, and only
// the records of partition part of parts when parts > 0).
type recordSource struct {
	path   string
	part   int
	parts  int
	mapRef func(Ref) Ref
}

func closeReaders(rs []*recordReader) {
	for _, r := range rs {
		r.close()
	}
}

// openSources opens srcs for one merge. Where they are more than
// maxFanIn, groups of maxFanIn are first merged into files under tmp (in
// two levels, or more), so that at most maxFanIn files are open at once.
func openSources(ctx context.Context, srcs []recordSource, tmp string) ([]*recordReader, error) {
	level := 0
	for len(srcs) > maxFanIn {
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			return nil, fmt.Errorf("dedup: %w", err)
		}
		var next []recordSource
		for g := 0; g < len(srcs); g += maxFanIn {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			path := filepath.Join(tmp, fmt.Sprintf("l%d-%05d.rec", level, g/maxFanIn))
			rs, err := openSources(ctx, srcs[g:min(g+maxFanIn, len(srcs))], tmp)
			if err != nil {
				return nil, err
			}
			w, err := createRecords(path)
			if err != nil {
				closeReaders(rs)
				return nil, err
			}
			if err := mergeRecords(rs, func(r *record, _ bool) error { return w.write(r) }); err != nil {
				w.abort()
				return nil, err
			}
			if err := w.commit(); err != nil {
				return nil, err
			}
			next = append(next, recordSource{path: path})
		}
		srcs = next
		level++
	}
	bufSize := max(4<<10, min(256<<10, (64<<20)/max(len(srcs), 1)))
	readers := make([]*recordReader, 0, len(srcs))
	for _, s := range srcs {
		rr, err := openRecords(s.path, bufSize)
		if err != nil {
			closeReaders(readers)
			return nil, err
		}
		rr.part, rr.parts, rr.mapRef = s.part, s.parts, s.mapRef
		readers = append(readers, rr)
	}
	return readers, nil
}

// sketchFingerprints identifies a run's sketch tasks by their fingerprints.
func sketchFingerprints(dirs []string) []any {
	out := make([]any, len(dirs))
	for i, d := range dirs {
		if info, err := readSketchInfo(d); err == nil {
			out[i] = info.Fingerprint
		}
	}
	return out
}

func taskName(t int) string { return fmt.Sprintf("%05d", t) }
