package export

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sync"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/smelt-dev/smelt/shards"
)

// tokenBatch is one record batch of a token shard: documents' ids,
// sources and token ids, valid until the callback returns.
type tokenBatch struct {
	ids, srcs *array.String
	// offs has rows+1 entries into u16 or u32 (one of them is set).
	offs []int32
	u16  []uint16
	u32  []uint32
}

func (b *tokenBatch) rows() int { return len(b.offs) - 1 }

// len is the number of tokens of row i.
func (b *tokenBatch) len(i int) int { return int(b.offs[i+1] - b.offs[i]) }

// raw returns row i's tokens as little-endian bytes of the shard's width
// (2 or 4 bytes a token).
func (b *tokenBatch) raw(i int, scratch *[]byte) []byte {
	lo, hi := b.offs[i], b.offs[i+1]
	if b.u32 != nil {
		return u32Bytes(b.u32[lo:hi], scratch)
	}
	return u16Bytes(b.u16[lo:hi], scratch)
}

// appendTokens appends row i's tokens to dst.
func (b *tokenBatch) appendTokens(dst []uint32, i int) []uint32 {
	lo, hi := b.offs[i], b.offs[i+1]
	if b.u32 != nil {
		return append(dst, b.u32[lo:hi]...)
	}
	for _, t := range b.u16[lo:hi] {
		dst = append(dst, uint32(t))
	}
	return dst
}

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// u16Bytes and u32Bytes view token ids as the little-endian bytes the
// formats store. On little-endian machines (all the ones trainers run on)
// the view shares the ids' memory: exporting is then one copy from the
// decoded Arrow buffer into the file's write buffer. Elsewhere the ids are
// encoded into scratch.
func u16Bytes(v []uint16, scratch *[]byte) []byte {
	if len(v) == 0 {
		return nil
	}
	if littleEndian {
		return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 2*len(v))
	}
	buf := (*scratch)[:0]
	for _, t := range v {
		buf = binary.LittleEndian.AppendUint16(buf, t)
	}
	*scratch = buf
	return buf
}

func u32Bytes(v []uint32, scratch *[]byte) []byte {
	if len(v) == 0 {
		return nil
	}
	if littleEndian {
		return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
	}
	buf := (*scratch)[:0]
	for _, t := range v {
		buf = binary.LittleEndian.AppendUint32(buf, t)
	}
	*scratch = buf
	return buf
}

// forEachTokenBatch reads a token shard record batch by record batch,
// after checking its size and sha256 against its manifest entry, and calls
// fn with each batch. Every id must be below vocab, and the shard must
// hold the rows and tokens its manifest entry says. Memory holds the
// compressed file and one decoded batch.
//
// buf, when not nil, is the file buffer of the previous call, reused: a new
// 64 MiB buffer a shard (zeroed by Go) cost 3 % of an export.
func forEachTokenBatch(path string, info shards.ShardInfo, vocab int, buf *[]byte, fn func(*tokenBatch) error) (err error) {
	if buf == nil {
		buf = new([]byte)
	}
	data, err := readWhole(path, info.Bytes, *buf)
	if err != nil {
		return err
	}
	*buf = data
	if sum := sha256Hex(data); sum != info.SHA256 {
		return fmt.Errorf("export: token shard %s: sha256 %s does not match its manifest's %s", path, sum, info.SHA256)
	}
	inFn := false // a panic in fn is a writer's, not the shard's
	defer func() {
		// The checksum matched, so this is a shard smelt wrote; still, a
		// reader must never crash on what it reads.
		if r := recover(); r != nil {
			if inFn {
				err = fmt.Errorf("export: internal error while writing %s: %v", path, r)
			} else {
				err = fmt.Errorf("export: token shard %s: corrupt Arrow data: %v", path, r)
			}
		}
	}()
	r, err := ipc.NewFileReader(bytes.NewReader(data), ipc.WithAllocator(&reuseAllocator{}))
	if err != nil {
		return fmt.Errorf("export: token shard %s: not a readable Arrow IPC file: %w", path, err)
	}
	defer r.Close()
	sc := r.Schema()
	var ci [3]int
	for k, name := range []string{shards.ColID, shards.ColSource, shards.ColTokens} {
		idx := sc.FieldIndices(name)
		if len(idx) == 0 {
			return fmt.Errorf("export: %s: not a token shard: no %q column", path, name)
		}
		ci[k] = idx[0]
	}
	var rows, tokens int64
	for i := 0; i < r.NumRecords(); i++ {
		rec, err := r.RecordAt(i)
		if err != nil {
			return fmt.Errorf("export: token shard %s: record batch %d: %w", path, i, err)
		}
		err = batchOf(rec, ci, path, i, vocab, func(b *tokenBatch) error {
			rows += int64(b.rows())
			tokens += int64(b.offs[len(b.offs)-1] - b.offs[0])
			inFn = true
			err := fn(b)
			inFn = false
			return err
		})
		rec.Release()
		if err != nil {
			return err
		}
	}
	if rows != info.Rows || tokens != info.Tokens {
		return fmt.Errorf("export: token shard %s: %d documents and %d tokens, its manifest says %d and %d", path, rows, tokens, info.Rows, info.Tokens)
	}
	return nil
}

func batchOf(rec arrow.Record, ci [3]int, path string, bi, vocab int, fn func(*tokenBatch) error) error {
	if rec.NumRows() == 0 {
		return nil
	}
	ids, ok1 := rec.Column(ci[0]).(*array.String)
	srcs, ok2 := rec.Column(ci[1]).(*array.String)
	lists, ok3 := rec.Column(ci[2]).(*array.List)
	if !ok1 || !ok2 || !ok3 {
		return fmt.Errorf("export: token shard %s: record batch %d: unexpected column types", path, bi)
	}
	b := &tokenBatch{ids: ids, srcs: srcs, offs: lists.Offsets()}
	lo, hi := int(b.offs[0]), int(b.offs[len(b.offs)-1])
	// 32-bit ids in a 16-bit vocabulary's format are refused here, ids
	// outside the vocabulary by checkIDs below.
	switch v := lists.ListValues().(type) {
	case *array.Uint16:
		b.u16 = v.Uint16Values()
		if lo > hi || hi > len(b.u16) {
			return fmt.Errorf("export: token shard %s: record batch %d: list offsets out of range", path, bi)
		}
	case *array.Uint32:
		if vocab <= 1<<16 {
			return fmt.Errorf("export: token shard %s: 32-bit token ids for a vocabulary of %d", path, vocab)
		}
		b.u32 = v.Uint32Values()
		if lo > hi || hi > len(b.u32) {
			return fmt.Errorf("export: token shard %s: record batch %d: list offsets out of range", path, bi)
		}
	default:
		return fmt.Errorf("export: token shard %s: tokens are %s, want uint16 or uint32", path, lists.ListValues().DataType())
	}
	for i := 0; i+1 < len(b.offs); i++ {
		if b.offs[i+1] < b.offs[i] {
			return fmt.Errorf("export: token shard %s: record batch %d row %d: negative list length", path, bi, i)
		}
	}
	if err := checkIDs(b, vocab, path, bi); err != nil {
		return err
	}
	return fn(b)
}

// readWhole reads the file at path, which must have size bytes, into buf
// (grown when short).
func readWhole(path string, size int64, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf, fmt.Errorf("export: token shard %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return buf, fmt.Errorf("export: token shard %w", err)
	}
	if st.Size() != size {
		return buf, fmt.Errorf("export: token shard %s: %d bytes, its manifest says %d (truncated or replaced)", path, st.Size(), size)
	}
	if int64(cap(buf)) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	if _, err := io.ReadFull(f, buf); err != nil {
		return buf, fmt.Errorf("export: token shard %s: %w (changed while read)", path, err)
	}
	return buf, nil
}

// reuseAllocator is an Arrow allocator that hands the buffers of a
// released record batch to the next one (zeroed, as Go's allocator gives
// them), so that reading a shard allocates its batch buffers about once:
// with Arrow's Go allocator, garbage collection of the per-batch buffers
// took 14 % of BenchmarkExport/nanogpt's CPU time.
type reuseAllocator struct {
	mu   sync.Mutex
	free [][]byte
}

func (a *reuseAllocator) Allocate(size int) []byte {
	a.mu.Lock()
	for i, b := range a.free {
		if cap(b) >= size && cap(b) <= 2*size+64 {
			a.free[i] = a.free[len(a.free)-1]
			a.free = a.free[:len(a.free)-1]
			a.mu.Unlock()
			b = b[:size]
			clear(b)
			return b
		}
	}
	a.mu.Unlock()
	return memory.DefaultAllocator.Allocate(size)
}

func (a *reuseAllocator) Reallocate(size int, b []byte) []byte {
	if cap(b) >= size {
		return b[:size]
	}
	nb := a.Allocate(size)
	copy(nb, b)
	a.Free(b)
	return nb
}

func (a *reuseAllocator) Free(b []byte) {
	if cap(b) < 4<<10 {
		return
	}
	a.mu.Lock()
	if len(a.free) < 32 {
		a.free = append(a.free, b[:0])
	}
	a.mu.Unlock()
}
