package shards

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"
)

// A document shard's text column holds nearly all of its bytes, and a
// takedown that removes 1% of the documents touches every 1,024-row record
// batch: with the batch's text compressed as one zstd frame, every byte of
// text was decompressed and compressed again (at 1M documents, 26.5 of the
// takedown's ~70 CPU-s went to that compression). So the text column's
// data buffer is written as several independent zstd frames, cut at
// content-defined document boundaries: within a record batch a frame ends
// after a document whose id hashes to 0 modulo textFrameDocs, after the
// document that brings the frame to textFrameCap bytes of text, and at the
// batch's end. The buffer is still one Arrow buffer (the 8-byte total
// uncompressed length, then the frames one after the other): every zstd
// decoder's one-shot call decodes concatenated frames (the zstd format,
// RFC 8878 section 3.1), and Arrow Go, the fast reader, Arrow JS with
// fzstd and Polars read them (docipc_test.go). A filter that removes
// documents (FilterDocShard) copies every frame whose documents all stay,
// byte for byte, and recompresses only the frames a removal touches; since
// a cut depends only on the document it follows (and the bytes since the
// last cut), the frames after a removal come out as a fresh write of the
// kept documents would cut them.

// frameText turns the framing on; tests turn it off to write shards as
// they were written before it (one frame per buffer).
var frameText = true

// textFrameDocs is the average number of documents per text frame.
const textFrameDocs = 16

// textFrameCap ends a frame once it holds this many bytes of text (long
// documents, or a run of ids that do not cut), so that a removal never
// recompresses more than about this much.
const textFrameCap = 1 << 20

// frameCut reports whether a text frame ends after the document id: a
// 64-bit FNV-1a hash of the id, mixed (splitmix64's finalizer, so that its
// low bits depend on every byte), is 0 modulo textFrameDocs.
func frameCut(id []byte) bool {
	h := uint64(14695981039346656037)
	for _, c := range id {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h%textFrameDocs == 0
}

// frameSpan is one text frame: the rows [lo, hi) of a batch and the end of
// their text in the batch's text buffer.
type frameSpan struct {
	lo, hi int
	end    int64
}

// appendTextFrames appends the frames of a batch of rows to spans: id(i)
// is row i's id, end(i) the end of its text in the buffer (which starts at
// 0). Frames without a byte of text are left out (their rows join no
// frame), so the last frame ends at the buffer's end.
func appendTextFrames(spans []frameSpan, rows int, id func(int) []byte, end func(int) int64) []frameSpan {
	lo, start := 0, int64(0)
	for i := 0; i < rows; i++ {
		e := end(i)
		if i == rows-1 || e-start >= textFrameCap || frameCut(id(i)) {
			if e > start {
				spans = append(spans, frameSpan{lo: lo, hi: i + 1, end: e})
			}
			lo, start = i+1, e
		}
	}
	return spans
}

// zstd frame layout (RFC 8878 section 3.1.1).
const (
	zstdMagic     = 0xFD2FB528
	zstdSkipMagic = 0x184D2A50 // to 0x184D2A5F
)

// zstdFrame is one frame found in a buffer: its bytes and, where the
// header states it, its decompressed size (-1 otherwise).
type zstdFrame struct {
	lo, hi  int
	content int64
}

var errZstdFrame = errors.New("not a sequence of zstd frames")

// walkZstdFrames splits p into its zstd frames without decompressing
// anything: headers and block headers only.
func walkZstdFrames(p []byte, frames []zstdFrame) ([]zstdFrame, error) {
	pos := 0
	for pos < len(p) {
		if len(p)-pos < 8 {
			return nil, fmt.Errorf("%w: %d stray bytes at %d", errZstdFrame, len(p)-pos, pos)
		}
		magic := binary.LittleEndian.Uint32(p[pos:])
		if magic&^0xF == zstdSkipMagic {
			n := int(binary.LittleEndian.Uint32(p[pos+4:]))
			if n < 0 || n > len(p)-pos-8 {
				return nil, fmt.Errorf("%w: skippable frame at %d overruns", errZstdFrame, pos)
			}
			pos += 8 + n
			continue
		}
		if magic != zstdMagic {
			return nil, fmt.Errorf("%w: bad magic at %d", errZstdFrame, pos)
		}
		f := zstdFrame{lo: pos, content: -1}
		q := pos + 4
		fhd := p[q]
		q++
		fcsFlag, single, checksum, dictFlag := fhd>>6, fhd&0x20 != 0, fhd&0x04 != 0, fhd&3
		if fhd&0x08 != 0 {
			return nil, fmt.Errorf("%w: reserved bit set at %d", errZstdFrame, pos)
		}
		if !single {
			q++ // window descriptor
		}
		q += [4]int{0, 1, 2, 4}[dictFlag]
		fcsLen := [4]int{0, 2, 4, 8}[fcsFlag]
		if fcsFlag == 0 && single {
			fcsLen = 1
		}
		if q+fcsLen > len(p) {
			return nil, fmt.Errorf("%w: truncated header at %d", errZstdFrame, pos)
		}
		switch fcsLen {
		case 1:
			f.content = int64(p[q])
		case 2:
			f.content = int64(binary.LittleEndian.Uint16(p[q:])) + 256
		case 4:
			f.content = int64(binary.LittleEndian.Uint32(p[q:]))
		case 8:
			f.content = int64(binary.LittleEndian.Uint64(p[q:]))
		}
		q += fcsLen
		for {
			if q+3 > len(p) {
				return nil, fmt.Errorf("%w: truncated block header in the frame at %d", errZstdFrame, pos)
			}
			bh := uint32(p[q]) | uint32(p[q+1])<<8 | uint32(p[q+2])<<16
			q += 3
			size := int(bh >> 3)
			switch (bh >> 1) & 3 {
			case 1: // RLE: one byte
				size = 1
			case 3:
				return nil, fmt.Errorf("%w: reserved block type in the frame at %d", errZstdFrame, pos)
			}
			if size > len(p)-q {
				return nil, fmt.Errorf("%w: block overruns the buffer in the frame at %d", errZstdFrame, pos)
			}
			q += size
			if bh&1 != 0 {
				break
			}
		}
		if checksum {
			q += 4
		}
		if q > len(p) {
			return nil, fmt.Errorf("%w: truncated checksum in the frame at %d", errZstdFrame, pos)
		}
		f.hi = q
		frames = append(frames, f)
		pos = q
	}
	return frames, nil
}

// unsafeBytes is s's bytes, not copied (never written).
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
