package dedup

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/smelt-dev/smelt/shards"
)

// A store is a directory that remembers every document kept by earlier
// dedup runs, so that a later run deduplicates a new crawl against them.
//
// It is made of per-run immutable segments and a Badger catalogue. A
// segment (STORE/seg/RUN/) holds, for each sketch task of the run that
// committed it, the records of its kept documents sorted by key and cut
// into bucket partitions (TASK/part-NNNN.rec, the sketch step's format,
// merged by the bucket tasks of later runs like their own sketch files),
// and the task's signatures, metadata and ids by row (hard links to the
// sketch files). Documents are referenced by (global store task, row);
// user ids are data inside the segment, never keys, so two documents with
// the same id are two documents.
//
// The Badger database (STORE/catalog) holds the settings, the generation
// (the number of segments) and one record per segment. A segment becomes
// part of the store only when its record is committed, in one Badger
// transaction that also checks that no other run committed since the
// committing run took its snapshot (else ErrStoreChanged: the run decides
// again). Segment files are written, fsynced and renamed before that, so a
// kill -9 at any point leaves either no segment or a complete one; a
// segment directory without a record is rebuilt by the next commit of that
// run. Badger is opened only for the moment of reading the catalogue or
// committing, so any number of runs read the store while one appends.
//
// Catalogue keys:
//
//	"m"          settings the signatures depend on (JSON)
//	"g"          the last generation given (8 bytes): never given again,
//	             also after its segment was removed
//	"s" gen(8)   segment record (JSON), gen counting from 1
const (
	catalogDir = "catalog"
	segDirName = "seg"
)

// ErrStoreLocked is wrapped by the error of a store operation that could
// not get the catalogue because another process held it too long.
var ErrStoreLocked = errors.New("store is locked")

// ErrStoreChanged is wrapped by a commit refused because another run
// committed to the store after this run's snapshot: its decision is stale.
var ErrStoreChanged = errors.New("store changed since this run read it")

// Segment is one committed run's kept documents.
type Segment struct {
	// Gen is the generation the segment made (1 for the first).
	Gen uint64 `json:"gen"`
	// Run identifies the committing run (its inputs and settings).
	Run string `json:"run"`
	// Dir is the segment's directory, relative to the store.
	Dir string `json:"dir"`
	// TaskBase is the store task number of the run's task 0.
	TaskBase int `json:"task_base"`
	// Rows are the rows of each of the run's sketch tasks; Kept the
	// documents kept (in the segment's records).
	Rows []int64 `json:"rows"`
	Kept int64   `json:"kept"`
	// Parts is the number of bucket partitions the records are cut into.
	Parts int `json:"parts"`
	// Merged says the records of all the segment's tasks are in one file
	// per partition (parts/part-NNNN.rec), not one per task and partition.
	Merged bool `json:"merged,omitempty"`
	// Inputs are the input directories of the run's tasks, as given.
	Inputs []string `json:"inputs,omitempty"`
	// Runs are the runs a compacted segment holds (Run is then
	// "compacted").
	Runs []string `json:"runs,omitempty"`
	// Created is when the segment was committed.
	Created time.Time `json:"created"`
}

// Snapshot is the part of a store a run deduplicates against: every
// segment committed by other runs up to Gen.
type Snapshot struct {
	// Path is the store's directory.
	Path string `json:"path"`
	// Gen is the store's generation when the snapshot was taken.
	Gen uint64 `json:"gen"`
	// Run is the run the snapshot is for; its own segment, if it
	// committed one already, and any after it are left out.
	Run      string    `json:"run"`
	Segments []Segment `json:"segments"`
}

// identity names what the snapshot holds ("" for no store): the segments'
// generations. A decision made on one identity is stale on another.
func (s *Snapshot) identity() string {
	if s == nil {
		return ""
	}
	var b strings.Builder
	for _, seg := range s.Segments {
		fmt.Fprintf(&b, "%d,", seg.Gen)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return fmt.Sprintf("%d:%s", len(s.Segments), hex.EncodeToString(sum[:8]))
}

// Docs is the number of documents the snapshot holds.
func (s *Snapshot) Docs() int64 {
	var n int64
	if s != nil {
		for _, seg := range s.Segments {
			n += seg.Kept
		}
	}
	return n
}

func (s *Snapshot) segDir(seg Segment) string { return filepath.Join(s.Path, seg.Dir) }

// partFile is the record file of partition q of a segment's task t (or of
// the whole segment, when it is merged).
func partFile(segDir string, seg *Segment, t, q int) string {
	if seg.Merged {
		return filepath.Join(segDir, "parts", fmt.Sprintf("part-%04d.rec", q))
	}
	return filepath.Join(segDir, taskName(t), fmt.Sprintf("part-%04d.rec", q))
}

// partSources lists the record files of the snapshot's segments that
// hold keys of partition part of parts.
func (s *Snapshot) partSources(part, parts int) []recordSource {
	var srcs []recordSource
	for i := range s.Segments {
		seg := &s.Segments[i]
		first, last := overlapping(part, parts, seg.Parts)
		base := seg.TaskBase
		mapRef := func(r Ref) Ref { return refStored | MakeRef(base+r.Task(), r.Row()) }
		tasks := len(seg.Rows)
		if seg.Merged {
			tasks = 1
		}
		for t := 0; t < tasks; t++ {
			for q := first; q <= last; q++ {
				src := recordSource{path: partFile(s.segDir(*seg), seg, t, q), mapRef: mapRef}
				if seg.Parts != parts {
					src.part, src.parts = part, parts
				}
				srcs = append(srcs, src)
			}
		}
	}
	return srcs
}

// taskDir is the directory of a global store task.
func (s *Snapshot) taskDir(task int) (string, error) {
	for _, seg := range s.Segments {
		if task >= seg.TaskBase && task < seg.TaskBase+len(seg.Rows) {
			return filepath.Join(s.Path, seg.Dir, taskName(task-seg.TaskBase)), nil
		}
	}
	return "", fmt.Errorf("dedup store %s: no segment holds store task %d", s.Path, task)
}

// storeSettings are the options a store's contents depend on.
type storeSettings struct {
	Format int    `json:"format"`
	Exact  bool   `json:"exact"`
	URL    bool   `json:"url"`
	NGram  int    `json:"ngram"`
	Perms  int    `json:"perms"`
	Bands  int    `json:"bands"`
	Rows   int    `json:"rows"`
	Seed   uint64 `json:"seed"`
	Scope  string `json:"scope"`
}

// storeFormat is the segment format's version.
const storeFormat = 2

func settingsOf(opt Options) storeSettings {
	s := storeSettings{Format: storeFormat, Exact: opt.Exact, URL: opt.URL, Scope: opt.Scope}
	if opt.MinHash {
		s.NGram, s.Perms, s.Bands, s.Rows, s.Seed = opt.NGram, opt.Perms, opt.Bands, opt.Rows, opt.Seed
	}
	return s
}

// storeLogger sends Badger's chatter to slog at debug level, warnings and
// errors at their levels.
type storeLogger struct{}

func (storeLogger) Errorf(f string, a ...any) {
	slog.Error(strings.TrimSpace(fmt.Sprintf("badger: "+f, a...)))
}
func (storeLogger) Warningf(f string, a ...any) {
	slog.Warn(strings.TrimSpace(fmt.Sprintf("badger: "+f, a...)))
}
func (storeLogger) Infof(f string, a ...any) {
	slog.Debug(strings.TrimSpace(fmt.Sprintf("badger: "+f, a...)))
}
func (storeLogger) Debugf(f string, a ...any) {
	slog.Debug(strings.TrimSpace(fmt.Sprintf("badger: "+f, a...)))
}

// StoreLockWait is how long a store operation waits for another process
// to release the catalogue (it holds it only to read or commit).
var StoreLockWait = 2 * time.Minute

// openCatalog opens the store's Badger catalogue, read-write (creating the
// store) or read-only, waiting while another process holds it.
func openCatalog(ctx context.Context, path string, readOnly bool) (*badger.DB, error) {
	if _, err := os.Stat(filepath.Join(path, "MANIFEST")); err == nil {
		// Format 1 was one Badger database keyed by document ids, at the
		// store's top level.
		return nil, fmt.Errorf("dedup store %s was made by an earlier smelt (one database keyed by document ids), which this smelt cannot read: start a new store", path)
	}
	dir := filepath.Join(path, catalogDir)
	if readOnly {
		if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); err != nil {
			readOnly = false // a new store: create it
		}
	}
	if !readOnly {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("dedup store %s: %w", path, err)
		}
	}
	deadline := time.Now().Add(StoreLockWait)
	wait := 10 * time.Millisecond
	for {
		bo := badger.DefaultOptions(dir).WithLogger(storeLogger{}).WithNumVersionsToKeep(1).
			WithMemTableSize(16 << 20).WithValueLogFileSize(16 << 20).WithBlockCacheSize(1 << 20).
			WithIndexCacheSize(1 << 20).WithNumCompactors(2).WithReadOnly(readOnly)
		db, err := badger.Open(bo)
		if err == nil {
			return db, nil
		}
		locked := strings.Contains(err.Error(), "Cannot acquire directory lock")
		if readOnly && !locked {
			// A catalogue a killed writer left needs its log replayed,
			// which only a writer may do.
			readOnly = false
			continue
		}
		if !locked {
			return nil, fmt.Errorf("dedup store %s: open: %w", path, err)
		}
		if time.Now().After(deadline) {
			pid := "unknown"
			if b, rerr := os.ReadFile(filepath.Join(dir, "LOCK")); rerr == nil {
				pid = strings.TrimSpace(string(b))
			}
			return nil, fmt.Errorf("dedup store %s: %w by PID %s for more than %v", path, ErrStoreLocked, pid, StoreLockWait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

func segKey(gen uint64) []byte {
	k := make([]byte, 9)
	k[0] = 's'
	binary.BigEndian.PutUint64(k[1:], gen)
	return k
}

// readCatalog checks the settings and returns every segment, in order.
func readCatalog(txn *badger.Txn, path string, want storeSettings) ([]Segment, bool, error) {
	it, err := txn.Get([]byte("m"))
	fresh := errors.Is(err, badger.ErrKeyNotFound)
	if err != nil && !fresh {
		return nil, false, fmt.Errorf("dedup store %s: read settings: %w", path, err)
	}
	if !fresh {
		var have storeSettings
		if err := it.Value(func(v []byte) error { return json.Unmarshal(v, &have) }); err != nil {
			return nil, false, fmt.Errorf("dedup store %s: settings record: %w", path, err)
		}
		if have.Format != storeFormat {
			return nil, false, fmt.Errorf("dedup store %s has format %d, this smelt reads format %d: start a new store", path, have.Format, storeFormat)
		}
		if have != want {
			return nil, false, fmt.Errorf("dedup store %s was built with %+v; this run uses %+v: use the same settings or another store", path, have, want)
		}
	}
	segs, err := listSegments(txn, path)
	return segs, fresh, err
}

// listSegments returns every segment record, in generation order.
func listSegments(txn *badger.Txn, path string) ([]Segment, error) {
	var segs []Segment
	o := badger.DefaultIteratorOptions
	o.Prefix = []byte{'s'}
	iter := txn.NewIterator(o)
	defer iter.Close()
	for iter.Rewind(); iter.Valid(); iter.Next() {
		var s Segment
		if err := iter.Item().Value(func(v []byte) error { return json.Unmarshal(v, &s) }); err != nil {
			return nil, fmt.Errorf("dedup store %s: segment record: %w", path, err)
		}
		segs = append(segs, s)
	}
	return segs, nil
}

// ReadSnapshot returns the store's segments that run decides against (all
// of them, or those committed before run's own segment once it has one),
// for
// documents sketched with opt (validated). A store made with other
// settings is refused, since its signatures and keys would not match.
func ReadSnapshot(ctx context.Context, path string, opt Options, run string) (*Snapshot, error) {
	db, err := openCatalog(ctx, path, true)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	want := settingsOf(opt)
	snap := &Snapshot{Path: path, Run: run}
	var fresh bool
	err = db.View(func(txn *badger.Txn) error {
		segs, f, err := readCatalog(txn, path, want)
		fresh = f
		// A run that committed already decided against what came before
		// its own segment: that is its snapshot, whatever came after.
		own := ^uint64(0)
		for _, s := range segs {
			if s.Run == run {
				own = s.Gen
			}
			if slices.Contains(s.Runs, run) {
				return fmt.Errorf("dedup store %s: this run committed already, and its segment was compacted into segment %d with others: its decision cannot be made again; remove that segment (smelt dedup store rm) or deduplicate into a new output against it", path, s.Gen)
			}
		}
		for _, s := range segs {
			if s.Gen < own {
				snap.Gen = max(snap.Gen, s.Gen)
				snap.Segments = append(snap.Segments, s)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if fresh && !db.Opts().ReadOnly {
		err = db.Update(func(txn *badger.Txn) error {
			b, _ := json.Marshal(want)
			return txn.Set([]byte("m"), b)
		})
		if err == nil {
			err = db.Sync()
		}
		if err != nil {
			return nil, fmt.Errorf("dedup store %s: %w", path, err)
		}
	}
	return snap, nil
}

// StoreStats describes a store.
type StoreStats struct {
	Generation uint64
	Segments   int
	Documents  int64
}

// ReadStoreStats reads a store's catalogue.
func ReadStoreStats(ctx context.Context, path string) (StoreStats, error) {
	var st StoreStats
	db, err := openCatalog(ctx, path, true)
	if err != nil {
		return st, err
	}
	defer db.Close()
	err = db.View(func(txn *badger.Txn) error {
		segs, err := listSegments(txn, path)
		for _, s := range segs {
			st.Generation = max(st.Generation, s.Gen)
			st.Segments++
			st.Documents += s.Kept
		}
		return err
	})
	return st, err
}

// commitSegment adds the kept documents of a run (its sketch task
// directories; dropped says which references were dropped) to the store
// as one segment, unless the run committed already. It fails with
// ErrStoreChanged when another run committed after snap was taken.
func commitSegment(ctx context.Context, snap *Snapshot, opt Options, sketches []string, dropped func(Ref) bool) (*Segment, error) {
	path, run := snap.Path, snap.Run
	// A new directory for every attempt: a directory no record names (a
	// killed attempt's, a removed segment's) is never reused, and store
	// rm or compact removes it when no run uses the store.
	name := fmt.Sprintf("r%s-%s", run[:min(len(run), 24)], strconv.FormatInt(time.Now().UnixNano(), 36))
	final := filepath.Join(path, segDirName, name)
	// Already committed? (A rerun of a run that finished its commit.)
	if seg, err := findSegment(ctx, path, opt, run); err != nil || seg != nil {
		return seg, err
	}
	tmp := final + ".tmp"
	seg := &Segment{Run: run, Dir: filepath.Join(segDirName, name), Merged: true}
	var runs [][]string // by partition, every task's sorted runs
	for t, dir := range sketches {
		info, err := readSketchInfo(dir)
		if err != nil {
			return nil, err
		}
		if runs == nil {
			runs = make([][]string, info.Parts)
		}
		if info.Parts != len(runs) {
			return nil, fmt.Errorf("dedup: sketch task %d was cut into %d partitions, task 0 into %d", t, info.Parts, len(runs))
		}
		for q := range runs {
			for r := 0; r < info.Runs; r++ {
				runs[q] = append(runs[q], filepath.Join(dir, runFile(r, q)))
			}
		}
		seg.Inputs = append(seg.Inputs, info.Input)
		seg.Parts = info.Parts
		seg.Rows = append(seg.Rows, info.Rows)
		td := filepath.Join(tmp, taskName(t))
		if err := os.MkdirAll(td, 0o755); err != nil {
			return nil, fmt.Errorf("dedup store %s: %w", path, err)
		}
		for _, f := range []string{sigFile, metaFile, idsFile} {
			if err := linkOrCopy(filepath.Join(dir, f), filepath.Join(td, f)); err != nil {
				return nil, fmt.Errorf("dedup store %s: %w", path, err)
			}
		}
		var k int64
		for row := int64(0); row < info.Rows; row++ {
			if !dropped(MakeRef(t, row)) {
				k++
			}
		}
		seg.Kept += k
	}
	// One record file per partition for the whole segment, so that a
	// later bucket task opens one file per segment, not one per task.
	if err := os.MkdirAll(filepath.Join(tmp, "parts"), 0o755); err != nil {
		return nil, fmt.Errorf("dedup store %s: %w", path, err)
	}
	for q, files := range runs {
		srcs := make([]recordSource, len(files))
		for i, f := range files {
			srcs[i] = recordSource{path: f}
		}
		err := writeMerged(ctx, srcs, partFile(tmp, seg, 0, q), filepath.Join(tmp, "merge"), func(r *record) bool { return !dropped(r.ref) })
		if err != nil {
			return nil, err
		}
	}
	if err := os.RemoveAll(filepath.Join(tmp, "merge")); err != nil {
		return nil, fmt.Errorf("dedup store %s: %w", path, err)
	}
	if err := syncTree(tmp); err != nil {
		return nil, fmt.Errorf("dedup store %s: %w", path, err)
	}
	if err := hook("segment-written"); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("dedup store %s: %w", path, err)
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return nil, err
	}
	if err := hook("segment-renamed"); err != nil {
		return nil, err
	}
	db, err := openCatalog(ctx, path, false)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	want := settingsOf(opt)
	err = db.Update(func(txn *badger.Txn) error {
		segs, fresh, err := readCatalog(txn, path, want)
		if err != nil {
			return err
		}
		if fresh {
			b, _ := json.Marshal(want)
			if err := txn.Set([]byte("m"), b); err != nil {
				return err
			}
		}
		nextTask := 0
		seg.Gen, err = lastGen(txn)
		if err != nil {
			return err
		}
		var others []uint64
		for _, s := range segs {
			if s.Run == run {
				*seg = s // committed meanwhile by another attempt
				return nil
			}
			others = append(others, s.Gen)
			seg.Gen = max(seg.Gen, s.Gen)
			nextTask = max(nextTask, s.TaskBase+len(s.Rows))
		}
		read := make([]uint64, len(snap.Segments))
		for i, s := range snap.Segments {
			read[i] = s.Gen
		}
		if !slices.Equal(others, read) {
			return fmt.Errorf("dedup store %s: %w (this run read segments %v, it now holds %v): deciding again",
				path, ErrStoreChanged, read, others)
		}
		if nextTask+len(seg.Rows) > MaxTasks {
			return fmt.Errorf("dedup store %s: full (%d tasks, at most %d)", path, nextTask+len(seg.Rows), MaxTasks)
		}
		seg.Gen++
		seg.TaskBase = nextTask
		seg.Created = time.Now().UTC().Truncate(time.Second)
		return putSegment(txn, seg)
	})
	if err != nil {
		if errors.Is(err, ErrStoreChanged) {
			return nil, err
		}
		return nil, fmt.Errorf("dedup store %s: commit: %w", path, err)
	}
	if err := db.Sync(); err != nil {
		return nil, fmt.Errorf("dedup store %s: sync: %w", path, err)
	}
	if err := hook("committed"); err != nil {
		return nil, err
	}
	return seg, nil
}

// writeMerged merges srcs into one sorted record file at path, keeping
// the records keep accepts (tmp holds intermediate merges).
func writeMerged(ctx context.Context, srcs []recordSource, path, tmp string, keep func(*record) bool) error {
	rs, err := openSources(ctx, srcs, tmp)
	if err != nil {
		return err
	}
	w, err := createRecords(path)
	if err != nil {
		closeReaders(rs)
		return err
	}
	err = mergeRecords(rs, func(r *record, _ bool) error {
		if !keep(r) {
			return nil
		}
		return w.write(r)
	})
	if err != nil {
		w.abort()
		return err
	}
	return w.commit()
}

// findSegment returns the segment run committed, or nil.
func findSegment(ctx context.Context, path string, opt Options, run string) (*Segment, error) {
	db, err := openCatalog(ctx, path, true)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var found *Segment
	err = db.View(func(txn *badger.Txn) error {
		segs, _, err := readCatalog(txn, path, settingsOf(opt))
		for i := range segs {
			if segs[i].Run == run {
				found = &segs[i]
			}
		}
		return err
	})
	return found, err
}

// linkOrCopy hard-links src to dst, copying where links fail (another
// file system).
func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	data, err := os.Open(src)
	if err != nil {
		return err
	}
	defer data.Close()
	f, err := shards.CreateAtomic(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, data); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}

// syncTree fsyncs every file and directory under dir.
func syncTree(dir string) error {
	return filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// PlanSnapshot returns the generations of the segments a run would decide
// against now (see ReadSnapshot), or none when the store does not exist
// yet; it creates nothing. A planner records them so that every task of a
// run reads the same snapshot (SnapshotAt), whatever is committed later.
func PlanSnapshot(path string, opt Options, run string) ([]uint64, error) {
	_, errOld := os.Stat(filepath.Join(path, "MANIFEST"))
	if _, err := os.Stat(filepath.Join(path, catalogDir, "MANIFEST")); err != nil && errOld != nil {
		return nil, nil
	}
	snap, err := ReadSnapshot(context.Background(), path, opt, run)
	if err != nil {
		return nil, err
	}
	// None is nil, as for a store that does not exist yet: a run planned
	// before its first commit and planned again after it (its own segment
	// is not in its snapshot) then has the same fingerprints, and the
	// same command resumes or reruns it instead of asking for --force.
	var gens []uint64
	for _, s := range snap.Segments {
		gens = append(gens, s.Gen)
	}
	return gens, nil
}

// SnapshotAt returns the snapshot of exactly the segments gens (as
// PlanSnapshot listed them) for run. Segments are immutable, so it is the
// same snapshot however many runs committed since.
func SnapshotAt(ctx context.Context, path string, opt Options, run string, gens []uint64) (*Snapshot, error) {
	snap := &Snapshot{Path: path, Run: run}
	if len(gens) == 0 {
		return snap, nil
	}
	db, err := openCatalog(ctx, path, true)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	want := map[uint64]bool{}
	for _, g := range gens {
		want[g] = true
	}
	err = db.View(func(txn *badger.Txn) error {
		segs, _, err := readCatalog(txn, path, settingsOf(opt))
		for _, s := range segs {
			if want[s.Gen] {
				snap.Segments = append(snap.Segments, s)
				snap.Gen = max(snap.Gen, s.Gen)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(snap.Segments) != len(gens) {
		return nil, fmt.Errorf("dedup store %s: holds %d of the %d segments this run was planned with", path, len(snap.Segments), len(gens))
	}
	return snap, nil
}
