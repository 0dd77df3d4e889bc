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
	pairsFile  = "pairs.bin" // 16 bytes per pair: two little-endian refs
	bucketDone = "bucket.json"
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
	// Reps is how many representatives of a shared LSH bucket each member
	// is compared with (0 = 4).
	Reps int
}

// bucketReps is the default number of representatives per LSH bucket.
const bucketReps = 4

// BucketTask runs one bucket task: a k-way merge of the sorted records of its
// partition from every sketch task (and store segment), emitting candidate
// pairs. Documents sharing an exact or URL key pair with the key's first
// document. Documents sharing an LSH band key are compared, in reference
// order, with at most Reps representatives of that bucket (the first
// documents that matched no earlier representative), and a pair is kept
// when its estimated Jaccard similarity reaches the threshold: a bucket
// shared by k documents costs at most Reps*k comparisons, never k^2. Every
// key lies in exactly one partition, so the pairs do not depend on the
// number of partitions.
func BucketTask(ctx context.Context, cfg BucketConfig) (*bucketInfo, error) {
	opt := cfg.Options
	reps := cfg.Reps
	if reps <= 0 {
		reps = bucketReps
	}
	fp, err := shards.Fingerprint("dedup-bucket", struct {
		O     Options `json:"o"`
		Part  int     `json:"part"`
		Parts int     `json:"parts"`
		Reps  int     `json:"reps"`
		Gen   string  `json:"gen"`
	}{opt, cfg.Part, cfg.Parts, reps, cfg.Snapshot.identity()}, sketchFingerprints(cfg.Sketches)...)
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
	type source struct {
		path   string
		part   int // filter to this partition of parts, when parts > 0
		parts  int
		mapRef func(Ref) Ref
	}
	var srcs []source
	for t, dir := range cfg.Sketches {
		info, err := readSketchInfo(dir)
		if err != nil {
			return nil, fmt.Errorf("dedup: sketch task %d is not finished: %w", t, err)
		}
		if info.Parts != cfg.Parts {
			return nil, fmt.Errorf("dedup: sketch task %d was cut into %d partitions, not %d", t, info.Parts, cfg.Parts)
		}
		for run := 0; run < info.Runs; run++ {
			srcs = append(srcs, source{path: filepath.Join(dir, runFile(run, cfg.Part))})
		}
	}
	if s := cfg.Snapshot; s != nil {
		for _, seg := range s.Segments {
			first, last := overlapping(cfg.Part, cfg.Parts, seg.Parts)
			for t := range seg.Rows {
				base := seg.TaskBase
				mapRef := func(r Ref) Ref { return refStored | MakeRef(base+r.Task(), r.Row()) }
				for q := first; q <= last; q++ {
					src := source{path: filepath.Join(s.segDir(seg), taskName(t), fmt.Sprintf("part-%04d.rec", q)), mapRef: mapRef}
					if seg.Parts != cfg.Parts {
						src.part, src.parts = cfg.Part, cfg.Parts
					}
					srcs = append(srcs, src)
				}
			}
		}
	}
	bufSize := max(4<<10, min(256<<10, (64<<20)/max(len(srcs), 1)))
	readers := make([]*recordReader, 0, len(srcs))
	for _, s := range srcs {
		rr, err := openRecords(s.path, bufSize)
		if err != nil {
			for _, r := range readers {
				r.close()
			}
			return nil, err
		}
		rr.part, rr.parts, rr.mapRef = s.part, s.parts, s.mapRef
		readers = append(readers, rr)
	}
	ds := newDocSet(opt.Perms, cfg.Sketches, cfg.Snapshot)
	defer ds.close()

	out, err := shards.CreateAtomic(filepath.Join(cfg.Dir, pairsFile))
	if err != nil {
		return nil, err
	}
	defer out.Abort()
	bw := bufio.NewWriterSize(out, 64<<10)
	info := &bucketInfo{Fingerprint: fp}
	var pb [16]byte
	pair := func(a, b Ref) error {
		binary.LittleEndian.PutUint64(pb[0:], uint64(a))
		binary.LittleEndian.PutUint64(pb[8:], uint64(b))
		info.Pairs++
		_, err := bw.Write(pb[:])
		return err
	}
	type rep struct {
		ref    Ref
		sig    []uint64
		loaded bool
	}
	repv := make([]rep, reps)
	for i := range repv {
		repv[i].sig = make([]uint64, opt.Perms)
	}
	nreps := 0
	var firstRef Ref
	var group int64
	cur := make([]uint64, opt.Perms)
	scratch := make([]byte, 8*opt.Perms)
	load := func(r *rep) error {
		if r.loaded {
			return nil
		}
		r.loaded = true
		_, err := ds.sig(r.ref, r.sig, scratch)
		return err
	}
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
			nreps = 1
			repv[0].ref, repv[0].loaded = r.ref, false
		}
		group++
		if first {
			return nil
		}
		switch r.tag >> 8 {
		case kindExact, kindURL:
			if firstRef.Stored() && r.ref.Stored() {
				return nil // both kept before: nothing to decide
			}
			if r.tag>>8 == kindExact {
				info.ExactPairs++
			} else {
				info.URLPairs++
			}
			return pair(firstRef, r.ref)
		}
		if _, err := ds.sig(r.ref, cur, scratch); err != nil {
			return err
		}
		for i := 0; i < nreps; i++ {
			rp := &repv[i]
			if rp.ref.Stored() && r.ref.Stored() {
				continue
			}
			if err := load(rp); err != nil {
				return err
			}
			info.CandidatePairs++
			if Jaccard(rp.sig, cur) >= opt.Threshold {
				info.VerifiedPairs++
				return pair(rp.ref, r.ref)
			}
		}
		if nreps < reps {
			rp := &repv[nreps]
			rp.ref, rp.loaded = r.ref, true
			copy(rp.sig, cur)
			nreps++
		}
		return nil
	}
	if err := mergeRecords(readers, visit); err != nil {
		return nil, err
	}
	info.MaxGroup = max(info.MaxGroup, group)
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	if err := out.Commit(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	if err := shards.WriteFileAtomic(filepath.Join(cfg.Dir, bucketDone), b); err != nil {
		return nil, err
	}
	return info, nil
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
