package lineage

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// The index is one immutable file of sorted key/value records, written
// once from the build's sorted entries (indexsort.go) and read with
// positioned reads: zstd-compressed blocks of about blockTarget bytes of
// records, then a block index (each block's offset, compressed length and
// first key), then a fixed footer. A lookup binary-searches the block
// index, which Open reads into memory (about 60 bytes a block: some 1.6 MB
// per million documents), and decompresses the blocks that can hold the
// prefix.
//
// Why not Badger, which the index used before 2026-12-06: its tables are
// memory-mapped and the pages written stay resident, and its compactions
// (or, bulk-loaded, its StreamWriter) build whole tables in memory, so the
// build's peak RSS grew with the run: 603 MB at 100,000 documents, 1.2-1.3
// GB at 300,000, 2.9 GB at 1,000,000. The index is written once and never
// updated, which is all a sorted file needs.
//
//	file   = magic blocks index footer
//	block  = zstd frame of records; record = uvarint klen, uvarint vlen, key, value
//	index  = per block: u64 offset, u32 compressed length, u32 key length, key
//	footer = u64 index offset, u64 index length, u64 blocks, magic (32 bytes)
const (
	indexMagic   = "SMELTLX1"
	blockTarget  = 32 << 10
	footerLen    = 32
	maxBlockSize = 64 << 20 // a block's compressed or decoded size, at most
	// IndexFile is the index's file inside IndexDir.
	IndexFile = "index.slx"
)

// indexWriter writes an index file from records given in key order.
type indexWriter struct {
	f     *os.File
	w     *bufio.Writer
	enc   *zstd.Encoder
	off   int64
	block []byte
	first []byte
	index []byte
	n     uint64
	comp  []byte
}

func newIndexWriter(path string) (*indexWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		f.Close()
		return nil, err
	}
	w := &indexWriter{f: f, w: bufio.NewWriterSize(f, 1<<20), enc: enc}
	w.write([]byte(indexMagic))
	return w, nil
}

func (w *indexWriter) write(b []byte) {
	w.w.Write(b)
	w.off += int64(len(b))
}

func (w *indexWriter) add(k, v []byte) {
	if len(w.block) == 0 {
		w.first = append(w.first[:0], k...)
	}
	w.block = binary.AppendUvarint(w.block, uint64(len(k)))
	w.block = binary.AppendUvarint(w.block, uint64(len(v)))
	w.block = append(w.block, k...)
	w.block = append(w.block, v...)
	if len(w.block) >= blockTarget {
		w.flushBlock()
	}
}

func (w *indexWriter) flushBlock() {
	if len(w.block) == 0 {
		return
	}
	w.comp = w.enc.EncodeAll(w.block, w.comp[:0])
	w.index = binary.LittleEndian.AppendUint64(w.index, uint64(w.off))
	w.index = binary.LittleEndian.AppendUint32(w.index, uint32(len(w.comp)))
	w.index = binary.LittleEndian.AppendUint32(w.index, uint32(len(w.first)))
	w.index = append(w.index, w.first...)
	w.write(w.comp)
	w.n++
	w.block = w.block[:0]
}

// finish writes the last block, the index and the footer, and syncs.
func (w *indexWriter) finish() error {
	w.flushBlock()
	indexOff := w.off
	w.write(w.index)
	var foot [footerLen]byte
	binary.LittleEndian.PutUint64(foot[0:], uint64(indexOff))
	binary.LittleEndian.PutUint64(foot[8:], uint64(len(w.index)))
	binary.LittleEndian.PutUint64(foot[16:], w.n)
	copy(foot[24:], indexMagic)
	w.write(foot[:])
	w.enc.Close()
	if err := w.w.Flush(); err != nil {
		w.f.Close()
		return err
	}
	if err := w.f.Sync(); err != nil {
		w.f.Close()
		return err
	}
	return w.f.Close()
}

func (w *indexWriter) abort() {
	w.enc.Close()
	w.f.Close()
	os.Remove(w.f.Name())
}

// indexFile is an opened index file.
type indexFile struct {
	f      *os.File
	size   int64
	blocks []blockRef
	dec    *zstd.Decoder
	mu     sync.Mutex // guards cache, raw and dec
	cache  [4]cachedBlock
	tick   uint64
	raw    []byte
}

// cachedBlock is a decoded block kept for the next lookups: a domain's
// documents, looked up in id order, mostly share their blocks.
type cachedBlock struct {
	i    int // block number + 1 (0: empty)
	used uint64
	data []byte
}

// block returns block i decoded, from the cache or the file.
func (ix *indexFile) block(i int) ([]byte, error) {
	ix.tick++
	lru := 0
	for j := range ix.cache {
		c := &ix.cache[j]
		if c.i == i+1 {
			c.used = ix.tick
			return c.data, nil
		}
		if c.used < ix.cache[lru].used {
			lru = j
		}
	}
	b := ix.blocks[i]
	if cap(ix.raw) < int(b.clen) {
		ix.raw = make([]byte, b.clen)
	}
	raw := ix.raw[:b.clen]
	if _, err := ix.f.ReadAt(raw, b.off); err != nil {
		return nil, fmt.Errorf("%s: block %d at offset %d: %w", ix.f.Name(), i, b.off, err)
	}
	c := &ix.cache[lru]
	c.i = 0
	data, err := ix.dec.DecodeAll(raw, c.data[:0])
	if err != nil {
		return nil, fmt.Errorf("%s: block %d at offset %d: %w", ix.f.Name(), i, b.off, err)
	}
	c.i, c.used, c.data = i+1, ix.tick, data
	return data, nil
}

type blockRef struct {
	off   int64
	clen  uint32
	first []byte
}

var errIndexFormat = errors.New("not a lineage index file")

// openIndexFile opens and checks an index file: the footer, and every
// block reference against the file's size, before anything they ask for is
// allocated.
func openIndexFile(path string) (*indexFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	ix, err := readIndexFile(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ix, nil
}

func readIndexFile(f *os.File) (*indexFile, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if size < int64(len(indexMagic)+footerLen) {
		return nil, fmt.Errorf("%w: %d bytes", errIndexFormat, size)
	}
	var head [len(indexMagic)]byte
	var foot [footerLen]byte
	if _, err := f.ReadAt(head[:], 0); err != nil {
		return nil, err
	}
	if _, err := f.ReadAt(foot[:], size-footerLen); err != nil {
		return nil, err
	}
	if string(head[:]) != indexMagic || string(foot[24:]) != indexMagic {
		return nil, fmt.Errorf("%w: bad magic", errIndexFormat)
	}
	indexOff := binary.LittleEndian.Uint64(foot[0:])
	indexLen := binary.LittleEndian.Uint64(foot[8:])
	n := binary.LittleEndian.Uint64(foot[16:])
	dataEnd := uint64(size - footerLen)
	if indexOff < uint64(len(indexMagic)) || indexOff > dataEnd || indexLen != dataEnd-indexOff || n > indexLen/16 {
		return nil, fmt.Errorf("%w: footer at offset %d names an index at %d of %d bytes (%d blocks)", errIndexFormat, size-footerLen, indexOff, indexLen, n)
	}
	raw := make([]byte, indexLen)
	if _, err := f.ReadAt(raw, int64(indexOff)); err != nil {
		return nil, err
	}
	ix := &indexFile{f: f, size: size, blocks: make([]blockRef, 0, n)}
	next := uint64(len(indexMagic))
	p := raw
	for i := uint64(0); i < n; i++ {
		if len(p) < 16 {
			return nil, fmt.Errorf("%w: block index entry %d at offset %d is cut short", errIndexFormat, i, indexOff+uint64(len(raw)-len(p)))
		}
		off := binary.LittleEndian.Uint64(p[0:])
		clen := binary.LittleEndian.Uint32(p[8:])
		klen := binary.LittleEndian.Uint32(p[12:])
		p = p[16:]
		if off != next || clen == 0 || clen > maxBlockSize || off+uint64(clen) > indexOff || uint64(klen) > uint64(len(p)) {
			return nil, fmt.Errorf("%w: block %d (offset %d, %d bytes, first key of %d bytes) does not fit the file", errIndexFormat, i, off, clen, klen)
		}
		ix.blocks = append(ix.blocks, blockRef{off: int64(off), clen: clen, first: p[:klen:klen]})
		if i > 0 && bytes.Compare(ix.blocks[i-1].first, p[:klen]) > 0 {
			return nil, fmt.Errorf("%w: block %d's first key sorts before block %d's", errIndexFormat, i, i-1)
		}
		p = p[klen:]
		next = off + uint64(clen)
	}
	if len(p) != 0 || next != indexOff {
		return nil, fmt.Errorf("%w: blocks end at %d, index at %d, %d index bytes left", errIndexFormat, next, indexOff, len(p))
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxBlockSize))
	if err != nil {
		return nil, err
	}
	ix.dec = dec
	return ix, nil
}

func (ix *indexFile) close() error {
	ix.dec.Close()
	return ix.f.Close()
}

// scan calls fn for each record whose key starts with prefix, in key
// order, until fn returns false. The key and value are valid during the
// call only.
func (ix *indexFile) scan(prefix []byte, fn func(k, v []byte) bool) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	// The last block whose first key sorts before the prefix may hold its
	// first records; no block before it can.
	i := sort.Search(len(ix.blocks), func(i int) bool { return bytes.Compare(ix.blocks[i].first, prefix) >= 0 })
	if i > 0 {
		i--
	}
	for ; i < len(ix.blocks); i++ {
		b := ix.blocks[i]
		if bytes.Compare(b.first, prefix) > 0 && !bytes.HasPrefix(b.first, prefix) {
			return nil
		}
		p, err := ix.block(i)
		if err != nil {
			return err
		}
		for len(p) > 0 {
			kl, n1 := binary.Uvarint(p)
			if n1 <= 0 {
				return fmt.Errorf("%s: block %d at offset %d: %w", ix.f.Name(), i, b.off, io.ErrUnexpectedEOF)
			}
			vl, n2 := binary.Uvarint(p[n1:])
			if n2 <= 0 || kl > uint64(len(p)) || vl > uint64(len(p)) || uint64(n1+n2)+kl+vl > uint64(len(p)) {
				return fmt.Errorf("%s: block %d at offset %d: a record runs past the block", ix.f.Name(), i, b.off)
			}
			p = p[n1+n2:]
			k, v := p[:kl], p[kl:kl+vl]
			p = p[kl+vl:]
			c := bytes.Compare(k, prefix)
			if c < 0 {
				continue
			}
			if !bytes.HasPrefix(k, prefix) {
				return nil
			}
			if !fn(k, v) {
				return nil
			}
		}
	}
	return nil
}

// get returns the value of key (nil, false: absent), copied.
func (ix *indexFile) get(key []byte) ([]byte, bool, error) {
	var val []byte
	found := false
	err := ix.scan(key, func(k, v []byte) bool {
		if bytes.Equal(k, key) {
			val, found = bytes.Clone(v), true
		}
		return false
	})
	return val, found, err
}
