package dedup

import (
	"bufio"
	"cmp"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"

	"github.com/smelt-dev/smelt/shards"
)

// Ref is the internal reference of a document: the sketch task that read
// it and its row in that task's input. A user's document id is data, never
// a reference: two documents with the same id are two documents. Refs of a
// run sort in input order (task-major). Refs with the stored bit set name
// documents of an earlier run kept in a Store; their task is the store's
// global task number.
//
// Limits: 2^23 tasks per run or store and 2^40 rows per task.
type Ref uint64

const (
	refRowBits  = 40
	refTaskBits = 23
	refStored   = Ref(1) << 63
	// MaxTasks is the most sketch tasks a run (or a store) can hold.
	MaxTasks = 1 << refTaskBits
	// MaxRows is the most documents one sketch task can read.
	MaxRows = int64(1) << refRowBits
)

// MakeRef returns the reference of row of task.
func MakeRef(task int, row int64) Ref {
	return Ref(uint64(task)<<refRowBits | uint64(row))
}

// Task is the reference's task.
func (r Ref) Task() int { return int(uint64(r&^refStored) >> refRowBits) }

// Row is the reference's row within its task.
func (r Ref) Row() int64 { return int64(uint64(r) & (1<<refRowBits - 1)) }

// Stored says the reference names a document kept in the store.
func (r Ref) Stored() bool { return r&refStored != 0 }

func (r Ref) String() string {
	if r.Stored() {
		return fmt.Sprintf("store:%d/%d", r.Task(), r.Row())
	}
	return fmt.Sprintf("%d/%d", r.Task(), r.Row())
}

// Record kinds: what a record's key is.
const (
	kindBand  = 1 // k1 is an LSH band key; the tag's low byte is the band
	kindExact = 2 // k1, k2 are the 128-bit exact hash
	kindURL   = 3 // k1 is the URL hash
)

// record is one key of one document, as the sketch step writes it and the
// bucket step merges it. Documents sharing a key (tag, k1, k2) are
// candidates.
type record struct {
	tag    uint16 // kind<<8 | band
	k1, k2 uint64
	ref    Ref
}

// recordSize is a record's size on disk: tag, k1, k2, ref, little-endian.
const recordSize = 2 + 8 + 8 + 8

// mk is the record key's 64-bit mix: it decides the bucket partition and
// the sort order, so that every partition is a contiguous range of mk.
//
// A band record's k2 is not part of its key: it is the digest of the
// document's whole signature, so that the documents of one LSH bucket come
// sorted by their signatures' content (the same order whatever the input
// order) and identical signatures next to each other.
func (r *record) mk() uint64 {
	return fmix64(r.k1^fmix64(r.keyK2()^uint64(r.tag)*0x9e3779b97f4a7c15)) ^ uint64(r.tag)<<48
}

// keyK2 is the part of k2 that belongs to the key (none for a band record).
func (r *record) keyK2() uint64 {
	if r.tag>>8 == kindBand {
		return 0
	}
	return r.k2
}

func (r *record) sameKey(o *record) bool {
	return r.tag == o.tag && r.k1 == o.k1 && r.keyK2() == o.keyK2()
}

func compareRecords(a, b *record) int {
	if c := cmp.Compare(a.mk(), b.mk()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.tag, b.tag); c != 0 {
		return c
	}
	if c := cmp.Compare(a.k1, b.k1); c != 0 {
		return c
	}
	if c := cmp.Compare(a.k2, b.k2); c != 0 {
		return c
	}
	return cmp.Compare(a.ref, b.ref)
}

// partOf is the partition of parts that mk falls in: partitions are equal
// ranges of the 64-bit key space.
func partOf(mk uint64, parts int) int {
	hi, _ := bits.Mul64(mk, uint64(parts))
	return int(hi)
}

// partLow is the smallest mk of partition p of parts.
func partLow(p, parts int) uint64 {
	if p <= 0 {
		return 0
	}
	q, r := bits.Div64(uint64(p), 0, uint64(parts))
	if r != 0 {
		q++
	}
	return q
}

// overlapping lists the partitions of otherParts whose ranges overlap
// partition p of parts (a store segment cut for another bucket count).
func overlapping(p, parts, otherParts int) (first, last int) {
	lo := partLow(p, parts)
	hi := ^uint64(0)
	if p+1 < parts {
		hi = partLow(p+1, parts) - 1
	}
	return partOf(lo, otherParts), partOf(hi, otherParts)
}

func putRecord(b []byte, r *record) {
	binary.LittleEndian.PutUint16(b[0:], r.tag)
	binary.LittleEndian.PutUint64(b[2:], r.k1)
	binary.LittleEndian.PutUint64(b[10:], r.k2)
	binary.LittleEndian.PutUint64(b[18:], uint64(r.ref))
}

func getRecord(b []byte, r *record) {
	r.tag = binary.LittleEndian.Uint16(b[0:])
	r.k1 = binary.LittleEndian.Uint64(b[2:])
	r.k2 = binary.LittleEndian.Uint64(b[10:])
	r.ref = Ref(binary.LittleEndian.Uint64(b[18:]))
}

// recordWriter writes sorted records to a file atomically.
type recordWriter struct {
	f   *shards.AtomicFile
	w   *bufio.Writer
	buf [recordSize]byte
	n   int64
}

func createRecords(path string) (*recordWriter, error) {
	f, err := shards.CreateAtomic(path)
	if err != nil {
		return nil, err
	}
	return &recordWriter{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

func (w *recordWriter) write(r *record) error {
	putRecord(w.buf[:], r)
	w.n++
	_, err := w.w.Write(w.buf[:])
	return err
}

func (w *recordWriter) commit() error {
	if err := w.w.Flush(); err != nil {
		w.f.Abort()
		return err
	}
	return w.f.Commit()
}

func (w *recordWriter) abort() { w.f.Abort() }

// recordReader streams a record file. When mapRef is set it translates
// each reference (a store segment's run-local refs into stored refs); only
// records of partition part of parts are returned when parts > 0.
type recordReader struct {
	path   string
	f      *os.File
	r      *bufio.Reader
	buf    [recordSize]byte
	cur    record
	off    int64
	mapRef func(Ref) Ref
	part   int
	parts  int
}

func openRecords(path string, bufSize int) (*recordReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	return &recordReader{path: path, f: f, r: bufio.NewReaderSize(f, bufSize)}, nil
}

// next reads the next record into rr.cur; it returns io.EOF at the end.
func (rr *recordReader) next() error {
	for {
		if _, err := io.ReadFull(rr.r, rr.buf[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return io.EOF
			}
			return fmt.Errorf("dedup: %s at byte %d: %w", rr.path, rr.off, err)
		}
		rr.off += recordSize
		getRecord(rr.buf[:], &rr.cur)
		if rr.parts > 0 && partOf(rr.cur.mk(), rr.parts) != rr.part {
			continue
		}
		if rr.mapRef != nil {
			rr.cur.ref = rr.mapRef(rr.cur.ref)
		}
		return nil
	}
}

func (rr *recordReader) close() error { return rr.f.Close() }

// mergeHeap is a k-way merge of sorted record readers.
type mergeHeap []*recordReader

func (h mergeHeap) Len() int           { return len(h) }
func (h mergeHeap) Less(i, j int) bool { return compareRecords(&h[i].cur, &h[j].cur) < 0 }
func (h mergeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)        { *h = append(*h, x.(*recordReader)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mergeRecords calls visit with every record of readers (each sorted) in
// one k-way merge, in key order and, within a key, in reference order;
// first is true for the first record of each key. Memory does not depend
// on how many documents share a key. It closes the readers.
func mergeRecords(readers []*recordReader, visit func(r *record, first bool) error) error {
	defer func() {
		for _, r := range readers {
			r.close()
		}
	}()
	h := make(mergeHeap, 0, len(readers))
	for _, r := range readers {
		err := r.next()
		if errors.Is(err, io.EOF) {
			continue
		}
		if err != nil {
			return err
		}
		h = append(h, r)
	}
	heap.Init(&h)
	var prev record
	started := false
	for h.Len() > 0 {
		top := h[0]
		rec := top.cur
		first := !started || !prev.sameKey(&rec)
		started, prev = true, rec
		if err := visit(&rec, first); err != nil {
			return err
		}
		err := top.next()
		switch {
		case errors.Is(err, io.EOF):
			heap.Pop(&h)
		case err != nil:
			return err
		default:
			heap.Fix(&h, 0)
		}
	}
	return nil
}
