package dedup

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/smelt-dev/smelt/shards"
)

// Store maintenance: listing, removing and merging segments. A run that
// uses a store holds a user lock in STORE/users for its whole length
// (UseStore); maintenance changes the catalogue first and then deletes
// files only when no run holds one, so a run in progress never loses a
// file it reads: a run that took its snapshot before a removal fails its
// commit with ErrStoreChanged and decides again, without the segment.

const (
	usersDir  = "users"
	maintLock = "maintenance.lock"
	genKey    = "g"
)

var userSeq atomic.Int64

// UseStore takes a user lock on the store at path, which store rm and
// compact respect; release it when the run no longer reads the store. It
// creates the store's directory.
func UseStore(path string) (release func(), err error) {
	dir := filepath.Join(path, usersDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("dedup store %s: %w", path, err)
	}
	name := fmt.Sprintf("%d-%d.lock", os.Getpid(), userSeq.Add(1))
	return shards.LockDir(dir, name)
}

// storeUsers lists the processes that hold a user lock on the store (and
// removes the lock files killed processes left).
func storeUsers(path string) ([]string, error) {
	dir := filepath.Join(path, usersDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dedup store %s: %w", path, err)
	}
	var users []string
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			continue // released meanwhile
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			b, _ := os.ReadFile(p)
			users = append(users, strings.TrimSpace(string(b)))
		} else {
			os.Remove(p) // stale: its process is gone
		}
		f.Close()
	}
	return users, nil
}

// ListSegments returns a store's segments, in generation order.
func ListSegments(ctx context.Context, path string) ([]Segment, error) {
	if _, err := os.Stat(filepath.Join(path, catalogDir, "MANIFEST")); err != nil {
		return nil, fmt.Errorf("dedup store %s: no catalogue: %w", path, err)
	}
	db, err := openCatalog(ctx, path, true)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var segs []Segment
	err = db.View(func(txn *badger.Txn) error {
		segs, err = listSegments(txn, path)
		return err
	})
	return segs, err
}

// Maintenance is what a store rm or compact did.
type Maintenance struct {
	// Removed are the segments no longer in the catalogue; Added the one
	// compact made.
	Removed []Segment
	Added   *Segment
	// Purged counts the segment directories deleted; Busy lists the runs
	// that used the store, when files were left for a later rm or compact.
	Purged int
	Busy   []string
}

// RemoveSegments removes the segments of generations gens from the store:
// later runs no longer deduplicate against their documents. Their files
// are deleted now if no run uses the store, else by a later rm or compact.
func RemoveSegments(ctx context.Context, path string, gens []uint64) (*Maintenance, error) {
	unlock, err := shards.LockDir(path, maintLock)
	if err != nil {
		return nil, fmt.Errorf("dedup store %s: %w", path, err)
	}
	defer unlock()
	db, err := openCatalog(ctx, path, false)
	if err != nil {
		return nil, err
	}
	m := &Maintenance{}
	err = db.Update(func(txn *badger.Txn) error {
		segs, err := listSegments(txn, path)
		if err != nil {
			return err
		}
		for _, g := range gens {
			i := slices.IndexFunc(segs, func(s Segment) bool { return s.Gen == g })
			if i < 0 {
				return fmt.Errorf("dedup store %s: no segment %d", path, g)
			}
			m.Removed = append(m.Removed, segs[i])
			if err := txn.Delete(segKey(g)); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = db.Sync()
	}
	db.Close()
	if err != nil {
		return nil, err
	}
	return m, purge(ctx, path, m)
}

// purge deletes the segment directories no catalogue record names, unless
// a run uses the store.
func purge(ctx context.Context, path string, m *Maintenance) error {
	users, err := storeUsers(path)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		m.Busy = users
		return nil
	}
	segs, err := ListSegments(ctx, path)
	if err != nil {
		return err
	}
	named := map[string]bool{}
	for _, s := range segs {
		named[filepath.Base(s.Dir)] = true
	}
	ents, err := os.ReadDir(filepath.Join(path, segDirName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("dedup store %s: %w", path, err)
	}
	for _, e := range ents {
		if named[e.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(path, segDirName, e.Name())); err != nil {
			return fmt.Errorf("dedup store %s: %w", path, err)
		}
		m.Purged++
	}
	return nil
}

// CompactStore merges every segment of the store into one (one record
// file per partition, the tasks' signature files linked), so that later
// runs open fewer files. Runs whose documents it holds are listed in the
// new segment's Runs. It refuses while a run uses the store.
func CompactStore(ctx context.Context, path string) (*Maintenance, error) {
	unlock, err := shards.LockDir(path, maintLock)
	if err != nil {
		return nil, fmt.Errorf("dedup store %s: %w", path, err)
	}
	defer unlock()
	if users, err := storeUsers(path); err != nil || len(users) > 0 {
		if err == nil {
			err = fmt.Errorf("dedup store %s is in use by %s: compact it when no run uses it", path, strings.Join(users, "; "))
		}
		return nil, err
	}
	segs, err := ListSegments(ctx, path)
	if err != nil {
		return nil, err
	}
	m := &Maintenance{}
	if len(segs) < 2 {
		return m, purge(ctx, path, m)
	}
	parts := segs[0].Parts
	for _, s := range segs {
		if s.Parts != parts {
			return nil, fmt.Errorf("dedup store %s: segments cut into %d and %d partitions cannot be merged", path, parts, s.Parts)
		}
	}
	name := "c" + strconvBase36(time.Now().UnixNano())
	final := filepath.Join(path, segDirName, name)
	tmp := final + ".tmp"
	seg := &Segment{Run: "compacted", Dir: filepath.Join(segDirName, name), Merged: true, Parts: parts}
	snap := &Snapshot{Path: path}
	task := 0
	for _, s := range segs {
		for t := range s.Rows {
			td := filepath.Join(tmp, taskName(task))
			if err := os.MkdirAll(td, 0o755); err != nil {
				return nil, err
			}
			for _, f := range []string{sigFile, metaFile, idsFile} {
				if err := linkOrCopy(filepath.Join(path, s.Dir, taskName(t), f), filepath.Join(td, f)); err != nil {
					return nil, fmt.Errorf("dedup store %s: %w", path, err)
				}
			}
			task++
		}
		seg.Rows = append(seg.Rows, s.Rows...)
		seg.Kept += s.Kept
		seg.Inputs = append(seg.Inputs, s.Inputs...)
		if s.Runs != nil {
			seg.Runs = append(seg.Runs, s.Runs...)
		} else {
			seg.Runs = append(seg.Runs, s.Run)
		}
		snap.Segments = append(snap.Segments, s)
	}
	if err := os.MkdirAll(filepath.Join(tmp, "parts"), 0o755); err != nil {
		return nil, err
	}
	// The segments' records, their references renumbered into the new
	// segment's tasks (in segment order: the same as the store's, less
	// the gaps removed segments left).
	local := map[int]int{} // store task -> new task
	for _, s := range segs {
		for t := range s.Rows {
			local[s.TaskBase+t] = len(local)
		}
	}
	for q := 0; q < parts; q++ {
		srcs := snap.partSources(q, parts)
		for i := range srcs {
			srcs[i].part, srcs[i].parts = 0, 0
			inner := srcs[i].mapRef
			srcs[i].mapRef = func(r Ref) Ref {
				g := inner(r)
				return MakeRef(local[g.Task()], g.Row())
			}
		}
		if err := writeMerged(ctx, srcs, partFile(tmp, seg, 0, q), filepath.Join(tmp, "merge"), func(*record) bool { return true }); err != nil {
			return nil, err
		}
	}
	if err := os.RemoveAll(filepath.Join(tmp, "merge")); err != nil {
		return nil, err
	}
	if err := syncTree(tmp); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return nil, err
	}
	db, err := openCatalog(ctx, path, false)
	if err != nil {
		return nil, err
	}
	err = db.Update(func(txn *badger.Txn) error {
		now, err := listSegments(txn, path)
		if err != nil {
			return err
		}
		if len(now) != len(segs) || now[len(now)-1].Gen != segs[len(segs)-1].Gen {
			return fmt.Errorf("dedup store %s: %w while compacting: compact again", path, ErrStoreChanged)
		}
		g, err := lastGen(txn)
		if err != nil {
			return err
		}
		for _, s := range segs {
			if err := txn.Delete(segKey(s.Gen)); err != nil {
				return err
			}
			g = max(g, s.Gen)
		}
		seg.Gen = g + 1
		seg.Created = time.Now().UTC().Truncate(time.Second)
		return putSegment(txn, seg)
	})
	if err == nil {
		err = db.Sync()
	}
	db.Close()
	if err != nil {
		os.RemoveAll(final)
		return nil, err
	}
	m.Removed, m.Added = segs, seg
	return m, purge(ctx, path, m)
}

func strconvBase36(n int64) string { return fmt.Sprintf("%x", n) }

// lastGen is the last generation the catalogue gave.
func lastGen(txn *badger.Txn) (uint64, error) {
	it, err := txn.Get([]byte(genKey))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var g uint64
	err = it.Value(func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("generation record of %d bytes", len(v))
		}
		g = binary.BigEndian.Uint64(v)
		return nil
	})
	return g, err
}

// putSegment writes a segment's record and makes its generation the last.
func putSegment(txn *badger.Txn, seg *Segment) error {
	b, err := json.Marshal(seg)
	if err != nil {
		return err
	}
	if err := txn.Set(segKey(seg.Gen), b); err != nil {
		return err
	}
	var g [8]byte
	binary.BigEndian.PutUint64(g[:], seg.Gen)
	return txn.Set([]byte(genKey), g[:])
}

// AddToStore adds every document of inputs (finished document-shard
// directories) to the store at path as one segment, deciding nothing: a
// later run drops its documents that duplicate them (exact, URL or MinHash,
// by opt, which must be the store's settings). It is how documents that
// must not come back (taken down, or held out) are recorded. work holds the
// sketch files meanwhile (default: a directory under the store, removed at
// the end). Adding the same inputs again adds nothing.
func AddToStore(ctx context.Context, path string, inputs []string, opt Options, work string) (*Segment, error) {
	if _, err := NewSketcher(&opt); err != nil {
		return nil, err
	}
	if len(inputs) == 0 || len(inputs) > MaxTasks {
		return nil, fmt.Errorf("dedup store %s: %d input directories to add", path, len(inputs))
	}
	run, err := RunIdentity(opt, inputs)
	if err != nil {
		return nil, err
	}
	run = "add-" + run
	release, err := UseStore(path)
	if err != nil {
		return nil, err
	}
	defer release()
	own := work == ""
	if own {
		work = filepath.Join(path, "work", run[:min(len(run), 28)])
	}
	sketches := make([]string, len(inputs))
	for i, in := range inputs {
		sketches[i] = filepath.Join(work, taskName(i))
		if _, err := SketchTask(ctx, SketchConfig{Input: in, Task: i, Dir: sketches[i], Options: opt, Parts: 4}); err != nil {
			return nil, err
		}
	}
	for attempt := 0; ; attempt++ {
		snap, err := ReadSnapshot(ctx, path, opt, run)
		if err != nil {
			return nil, err
		}
		seg, err := commitSegment(ctx, snap, opt, sketches, func(Ref) bool { return false })
		if err == nil {
			if own {
				err = os.RemoveAll(work)
			}
			return seg, err
		}
		if !errors.Is(err, ErrStoreChanged) || attempt >= 10 {
			return nil, err
		}
	}
}
