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
// positioned reads (safe for concurrent use).
type docSet struct {
	perms  int
	dirs   []string // this run's sketch task directories, by task
	stored func(task int) (string, error)
	mu     sync.Mutex
	files  map[string]*os.File
}

func newDocSet(perms int, dirs []string, snap *Snapshot) *docSet {
	ds := &docSet{perms: perms, dirs: dirs, files: map[string]*os.File{}}
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

func (ds *docSet) file(r Ref, name string) (*os.File, error) {
	dir, err := ds.dir(r)
	if err != nil {
		return nil, err
	}
	p := filepath.Join(dir, name)
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if f, ok := ds.files[p]; ok {
		return f, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	ds.files[p] = f
	return f, nil
}

// sig reads r's signature into dst (len perms); false when it has none.
func (ds *docSet) sig(r Ref, dst []uint64, scratch []byte) (bool, error) {
	f, err := ds.file(r, sigFile)
	if err != nil {
		return false, err
	}
	n := 8 * ds.perms
	if _, err := f.ReadAt(scratch[:n], r.Row()*int64(n)); err != nil {
		return false, fmt.Errorf("dedup: %s row %d: %w", f.Name(), r.Row(), err)
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
	f, err := ds.file(r, metaFile)
	if err != nil {
		return nil, err
	}
	var b [metaSize]byte
	if _, err := f.ReadAt(b[:], r.Row()*metaSize); err != nil {
		return nil, fmt.Errorf("dedup: %s row %d: %w", f.Name(), r.Row(), err)
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
	if idLen > 0 {
		fi, err := ds.file(r, idsFile)
		if err != nil {
			return nil, err
		}
		id := make([]byte, idLen)
		if _, err := fi.ReadAt(id, int64(idOff)); err != nil {
			return nil, fmt.Errorf("dedup: %s at %d: %w", fi.Name(), idOff, err)
		}
		m.ID = string(id)
	}
	return m, nil
}

func (ds *docSet) close() {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	for _, f := range ds.files {
		f.Close()
	}
	ds.files = map[string]*os.File{}
}
