package dedup

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
)

// docSet reads documents' signatures and metadata by reference, from the
// sketch task directories of this run and of the store's segments, with
// positioned reads (safe for concurrent use), keeping at most maxDocFiles
// files open.
type docSet struct {
	perms  int
	dirs   []string // this run's sketch task directories, by task
	stored func(task int) (string, error)
	mu     sync.Mutex
	files  map[string]*openFile
	tick   uint64
}

func newDocSet(perms int, dirs []string, snap *Snapshot) *docSet {
	ds := &docSet{perms: perms, dirs: dirs, files: map[string]*openFile{}}
	if snap != nil {
		ds.stored = snap.taskDir
	}
	return ds
}

func (ds *docSet) dir(r Ref) (string, error) {
	if r.Stored() {
		if ds.stored == nil {
			return "", fmt.Errorf("dedup: stored reference %v without a store", r)
		}
		return ds.stored(r.Task())
	}
	if r.Task() >= len(ds.dirs) {
		return "", fmt.Errorf("dedup: reference %v: the run has %d sketch tasks", r, len(ds.dirs))
	}
	return ds.dirs[r.Task()], nil
}

// maxDocFiles is the most files a docSet keeps open; the least recently
// used is closed to open another.
const maxDocFiles = 32

// readAt reads len(b) bytes at off of file name of r's task directory.
func (ds *docSet) readAt(r Ref, name string, b []byte, off int64) error {
	dir, err := ds.dir(r)
	if err != nil {
		return err
	}
	p := filepath.Join(dir, name)
	ds.mu.Lock()
	defer ds.mu.Unlock()
	ds.tick++
	f, ok := ds.files[p]
	if !ok {
		if len(ds.files) >= maxDocFiles {
			var old string
			oldest := ^uint64(0)
			for k, of := range ds.files {
				if of.used < oldest {
					old, oldest = k, of.used
				}
			}
			ds.files[old].f.Close()
			delete(ds.files, old)
		}
		fh, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("dedup: %w", err)
		}
		f = &openFile{f: fh}
		ds.files[p] = f
	}
	f.used = ds.tick
	if _, err := f.f.ReadAt(b, off); err != nil {
		return fmt.Errorf("dedup: %s at byte %d: %w", p, off, err)
	}
	return nil
}

type openFile struct {
	f    *os.File
	used uint64
}

// sig reads r's signature into dst (len perms); false when it has none.
func (ds *docSet) sig(r Ref, dst []uint64, scratch []byte) (bool, error) {
	n := 8 * ds.perms
	if err := ds.readAt(r, sigFile, scratch[:n], r.Row()*int64(n)); err != nil {
		return false, err
	}
	any := false
	for j := range dst {
		dst[j] = binary.LittleEndian.Uint64(scratch[8*j:])
		any = any || dst[j] != 0
	}
	return any, nil
}

// meta reads r's metadata and id.
func (ds *docSet) meta(r Ref) (*docMeta, error) {
	var b [metaSize]byte
	if err := ds.readAt(r, metaFile, b[:], r.Row()*metaSize); err != nil {
		return nil, err
	}
	m := &docMeta{}
	m.Exact[0] = binary.LittleEndian.Uint64(b[0:])
	m.Exact[1] = binary.LittleEndian.Uint64(b[8:])
	m.URL = binary.LittleEndian.Uint64(b[16:])
	m.Quality = math.Float64frombits(binary.LittleEndian.Uint64(b[24:]))
	flags := binary.LittleEndian.Uint32(b[32:])
	if flags&metaHasQuality == 0 {
		m.Quality = math.NaN()
	}
	m.HasSig = flags&metaHasSig != 0
	idLen := binary.LittleEndian.Uint32(b[36:])
	idOff := binary.LittleEndian.Uint64(b[40:])
	if idLen > 1<<20 {
		return nil, fmt.Errorf("dedup: %v: id of %d bytes in %s", r, idLen, metaFile)
	}
	if idLen > 0 {
		id := make([]byte, idLen)
		if err := ds.readAt(r, idsFile, id, int64(idOff)); err != nil {
			return nil, err
		}
		m.ID = string(id)
	}
	return m, nil
}

func (ds *docSet) close() {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	for _, f := range ds.files {
		f.f.Close()
	}
	ds.files = map[string]*openFile{}
}
