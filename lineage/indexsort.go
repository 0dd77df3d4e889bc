package lineage

import (
	"bufio"
	"bytes"
	"cmp"
	"container/heap"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// The build's entries come in document order, not key order: they are
// sorted on disk in runs of runBytes and merged into the index file
// (indexfile.go). Memory is one run buffer, and while merging a read
// buffer per run file.
const runBytes = 32 << 20

// sorter collects key/value entries and writes them sorted into runs.
type sorter struct {
	dir   string
	limit int       // bytes of keys and values a run holds (0: runBytes)
	buf   []byte    // the current run's records, back to back
	recs  []sortRec // their positions in buf
	runs  []string  // run files written so far
	seq   uint64    // entries added, for "the later of two equal keys"
	count int64
}

type sortRec struct {
	off, klen, vlen uint32
	seq             uint64
}

func (s *sorter) add(k, v []byte) error {
	limit := cmp.Or(s.limit, runBytes)
	if s.buf == nil {
		s.buf = make([]byte, 0, limit)
	}
	if len(s.buf)+len(k)+len(v) > limit && len(s.recs) > 0 {
		if err := s.spill(); err != nil {
			return err
		}
	}
	s.recs = append(s.recs, sortRec{off: uint32(len(s.buf)), klen: uint32(len(k)), vlen: uint32(len(v)), seq: s.seq})
	s.seq++
	s.count++
	s.buf = append(s.buf, k...)
	s.buf = append(s.buf, v...)
	return nil
}

func (s *sorter) key(r sortRec) []byte { return s.buf[r.off : r.off+r.klen] }

// spill writes the current run to a file, sorted by key and, among equal
// keys, by the order they were added.
func (s *sorter) spill() error {
	slices.SortFunc(s.recs, func(a, b sortRec) int {
		if c := bytes.Compare(s.key(a), s.key(b)); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	path := filepath.Join(s.dir, fmt.Sprintf("run-%05d", len(s.runs)))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var hdr [20]byte
	for _, r := range s.recs {
		binary.LittleEndian.PutUint32(hdr[0:], r.klen)
		binary.LittleEndian.PutUint32(hdr[4:], r.vlen)
		binary.LittleEndian.PutUint64(hdr[8:], r.seq)
		w.Write(hdr[:16])
		w.Write(s.buf[r.off : r.off+r.klen+r.vlen])
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("lineage index: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	s.runs = append(s.runs, path)
	s.buf, s.recs = s.buf[:0], s.recs[:0]
	return nil
}

// runReader reads one run file's records in order.
type runReader struct {
	r    *bufio.Reader
	f    *os.File
	k, v []byte
	seq  uint64
}

func (r *runReader) next() (bool, error) {
	var hdr [16]byte
	if _, err := io.ReadFull(r.r, hdr[:]); err != nil {
		if err == io.EOF {
			return false, nil
		}
		return false, fmt.Errorf("lineage index: reading %s: %w", r.f.Name(), err)
	}
	kl, vl := binary.LittleEndian.Uint32(hdr[0:]), binary.LittleEndian.Uint32(hdr[4:])
	r.seq = binary.LittleEndian.Uint64(hdr[8:])
	n := int(kl + vl)
	if cap(r.k) < n {
		r.k = make([]byte, n)
	}
	b := r.k[:n]
	if _, err := io.ReadFull(r.r, b); err != nil {
		return false, fmt.Errorf("lineage index: reading %s: %w", r.f.Name(), err)
	}
	r.k, r.v = b[:kl], b[kl:]
	return true, nil
}

type runHeap []*runReader

func (h runHeap) Len() int { return len(h) }
func (h runHeap) Less(i, j int) bool {
	if c := bytes.Compare(h[i].k, h[j].k); c != 0 {
		return c < 0
	}
	return h[i].seq < h[j].seq
}
func (h runHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)   { *h = append(*h, x.(*runReader)) }
func (h *runHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// merge merges the runs and calls emit for every key in key order, with
// the value added last among equal keys (as a map would keep it). The key
// and value are valid during the call only.
func (s *sorter) merge(emit func(k, v []byte) error) error {
	if len(s.recs) > 0 {
		if err := s.spill(); err != nil {
			return err
		}
	}
	s.buf, s.recs = nil, nil
	h := runHeap{}
	for _, path := range s.runs {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		r := &runReader{f: f, r: bufio.NewReaderSize(f, 64<<10)}
		more, err := r.next()
		if err != nil {
			return err
		}
		if more {
			h = append(h, r)
		}
	}
	heap.Init(&h)
	var last, lastVal []byte
	have := false
	for h.Len() > 0 {
		r := h[0]
		if !have || !bytes.Equal(r.k, last) {
			if have {
				if err := emit(last, lastVal); err != nil {
					return err
				}
			}
			last, have = append(last[:0], r.k...), true
		}
		// A later entry of the same key replaces the earlier one.
		lastVal = append(lastVal[:0], r.v...)
		more, err := r.next()
		if err != nil {
			return err
		}
		if more {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	if have {
		return emit(last, lastVal)
	}
	return nil
}
