package export

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// A JSONL export file is a concatenation of independently compressed
// blocks (zstd frames, or gzip members), cut at content-defined points: a
// block ends after a document whose id hashes to 0 modulo
// jsonlBlockDocs, or once it holds jsonlBlockCap uncompressed bytes.
// Each block's bytes depend only on its own documents, so removing a
// document changes only the block that held it (merged with the next one
// when the removed document was the cut point), and an export with Reuse
// copies every other block of the earlier file verbatim.
//
// The size cap keeps locality: counting restarts at every hash cut, so
// cap cuts move only inside the run of documents between two hash cuts.
//
// jsonlBlockDocs trades size against reuse. At 1% random removal a
// block of K documents changes with probability about 1-0.99^K, and a
// smaller block compresses worse (each starts with no history). Measured
// on 3,000 documents (11.3 MB of JSONL) of the real text in
// ../shared/data/clean_text by TestJSONLBlockTradeoff
// (SMELT_JSONL_TRADEOFF=1), against one stream per file:
//
//	K    block   zstd size  gzip size  recompressed after 1% removal
//	8    28 KB   1.154      1.080      13.8%
//	16   54 KB   1.110      1.047      23.1%
//	32   115 KB  1.071      1.023      39.7%
//	64   239 KB  1.042      1.012      65.0%
//
// K = 16 keeps a takedown's compression to under a quarter of a full
// export's at 1% removal, for 11% more bytes (zstd; 5% for gzip).
const (
	jsonlBlockDocs = 16
	jsonlBlockCap  = 4 << 20
)

// jsonlBlockSalt separates the block hash from every other use of a
// document id's hash (the held-out split, shard routing).
const jsonlBlockSalt = "smelt/jsonl-block/v1\x00"

// jsonlCutAfter reports whether a block ends after the document id, with
// k documents per block on average.
func jsonlCutAfter[T string | []byte](id T, k uint64) bool {
	// FNV-1a over salt and id, then a 64-bit finaliser (splitmix64) so
	// that every bit of the result depends on every byte.
	h := uint64(14695981039346656037)
	for i := 0; i < len(jsonlBlockSalt); i++ {
		h = (h ^ uint64(jsonlBlockSalt[i])) * 1099511628211
	}
	for i := 0; i < len(id); i++ {
		h = (h ^ uint64(id[i])) * 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h%k == 0
}

// blockEncoder compresses one block at a time, with no history shared
// between blocks: one zstd encoder (a single goroutine, the default
// level, as the streaming writer had) reused with EncodeAll, or one gzip
// writer reset per member. Reusing it saves allocating and clearing an
// encoder's history per file.
type blockEncoder struct {
	zenc *zstd.Encoder
	gz   *gzip.Writer
	buf  bytes.Buffer
	dst  []byte
}

func newBlockEncoder(compression string) (*blockEncoder, error) {
	if compression == "gzip" {
		return &blockEncoder{gz: gzip.NewWriter(io.Discard)}, nil
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("export: zstd: %w", err)
	}
	return &blockEncoder{zenc: enc}, nil
}

// encode returns the compressed block of src, valid until the next call.
func (b *blockEncoder) encode(src []byte) ([]byte, error) {
	if b.zenc != nil {
		b.dst = b.zenc.EncodeAll(src, b.dst[:0])
		return b.dst, nil
	}
	b.buf.Reset()
	b.gz.Reset(&b.buf)
	if _, err := b.gz.Write(src); err != nil {
		return nil, fmt.Errorf("export: gzip: %w", err)
	}
	if err := b.gz.Close(); err != nil {
		return nil, fmt.Errorf("export: gzip: %w", err)
	}
	return b.buf.Bytes(), nil
}

func (b *blockEncoder) close() {
	if b != nil && b.zenc != nil {
		b.zenc.Close()
	}
}

// span is a block's extent in an earlier file.
type span struct{ off, end int }

// earlierBlocks are the blocks of an earlier export's file, by the
// sha256 of their uncompressed bytes. A new block whose bytes hash the
// same is copied: the bytes it decompresses to are then exactly the new
// block's, and a block's compressed bytes depend only on them.
type earlierBlocks struct {
	data   []byte
	blocks map[[32]byte]span
}

func (e *earlierBlocks) find(block []byte) ([]byte, bool) {
	if e == nil {
		return nil, false
	}
	sp, ok := e.blocks[sha256.Sum256(block)]
	if !ok {
		return nil, false
	}
	return e.data[sp.off:sp.end], true
}

// maxEarlierBlock bounds a block of an earlier file that is decompressed
// for reuse (a larger one is not reused: it is compressed again).
const maxEarlierBlock = 64 << 20

// readEarlier reads the blocks of an earlier export's file. It returns nil
// (compress everything) when the file is missing, changed since its
// export recorded its sha256, or not made of blocks this exporter writes;
// a block that does not decode is left out. Nothing in it can make the
// export fail or differ: at worst, less is copied.
func readEarlier(path, sum string, enc *blockEncoder) *earlierBlocks {
	data, err := os.ReadFile(path)
	if err != nil {
		slog.Warn("export: reuse: earlier file unreadable; compressing again", "file", path, "err", err)
		return nil
	}
	if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != sum {
		slog.Warn("export: reuse: earlier file changed since its export; compressing again", "file", path)
		return nil
	}
	eb := &earlierBlocks{data: data, blocks: map[[32]byte]span{}}
	if enc.gz != nil {
		err = eb.gzipMembers(enc)
	} else {
		err = eb.zstdFrames(enc)
	}
	if err != nil {
		slog.Warn("export: reuse: earlier file not reusable past an offset; compressing the rest again", "file", path, "err", err)
	}
	return eb
}

// zstdFrames finds and decodes every zstd frame of e.data, walking the
// frame and block headers of RFC 8878 (section 3.1) to find each frame's
// end: the decoder has no API that reports where a frame ends. A frame
// counts only if its header is the one enc writes for content of its
// size (the header depends on nothing else; the bytes after it are what
// decodes to the content): a frame of another encoder or setting, such as
// the single stream an older smelt wrote, is compressed again.
func (e *earlierBlocks) zstdFrames(enc *blockEncoder) error {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxEarlierBlock))
	if err != nil {
		return err
	}
	defer dec.Close()
	var out, zeros []byte
	for off := 0; off < len(e.data); {
		end, hdr, err := zstdFrameEnd(e.data[off:])
		if err != nil {
			return fmt.Errorf("offset %d: %w", off, err)
		}
		end += off
		out, err = dec.DecodeAll(e.data[off:end], out[:0])
		if err == nil {
			if len(zeros) < len(out) {
				zeros = make([]byte, len(out))
			}
			want, err := enc.encode(zeros[:len(out)])
			if err == nil && len(want) >= hdr && bytes.Equal(want[:hdr], e.data[off:off+hdr]) {
				e.blocks[sha256.Sum256(out)] = span{off, end}
			}
		}
		off = end
	}
	return nil
}

var errZstdFrame = errors.New("not a zstd frame written by this exporter")

// zstdFrameEnd returns the length of the zstd frame that b starts with,
// and the length of its frame header. A frame declaring more than
// maxEarlierBlock bytes of content is refused before it is decoded.
func zstdFrameEnd(b []byte) (end, header int, err error) {
	if len(b) < 6 || binary.LittleEndian.Uint32(b) != 0xFD2FB528 {
		return 0, 0, errZstdFrame
	}
	fhd := b[4]
	fcsFlag, single, checksum, dictFlag := fhd>>6, fhd>>5&1 == 1, fhd>>2&1 == 1, fhd&3
	if fhd>>3&1 != 0 {
		return 0, 0, errZstdFrame // reserved bit
	}
	p := 5
	if !single {
		p++ // window descriptor
	}
	p += [4]int{0, 1, 2, 4}[dictFlag]
	fcsLen := [4]int{0, 2, 4, 8}[fcsFlag]
	if fcsFlag == 0 && single {
		fcsLen = 1
	}
	if p+fcsLen > len(b) {
		return 0, 0, io.ErrUnexpectedEOF
	}
	size := int64(-1)
	switch fcsLen {
	case 1:
		size = int64(b[p])
	case 2:
		size = int64(binary.LittleEndian.Uint16(b[p:])) + 256
	case 4:
		size = int64(binary.LittleEndian.Uint32(b[p:]))
	case 8:
		size = int64(min(binary.LittleEndian.Uint64(b[p:]), maxEarlierBlock+1))
	}
	p += fcsLen
	if size > maxEarlierBlock {
		return 0, 0, fmt.Errorf("a frame of %d bytes, over the %d reused", size, maxEarlierBlock)
	}
	header = p
	for {
		if p+3 > len(b) {
			return 0, 0, io.ErrUnexpectedEOF
		}
		h := uint32(b[p]) | uint32(b[p+1])<<8 | uint32(b[p+2])<<16
		p += 3
		last, typ, n := h&1 == 1, h>>1&3, int(h>>3)
		switch typ {
		case 1: // RLE: one byte, repeated n times
			n = 1
		case 3:
			return 0, 0, errZstdFrame // reserved block type
		}
		if n > len(b)-p {
			return 0, 0, io.ErrUnexpectedEOF
		}
		p += n
		if last {
			break
		}
	}
	if checksum {
		p += 4
		if p > len(b) {
			return 0, 0, io.ErrUnexpectedEOF
		}
	}
	return p, header, nil
}

// gzipMembers finds and decodes every gzip member of e.data. The reader
// is given a bytes.Reader, an io.ByteReader, so it reads no further than
// the member's trailer and the reader's position is where the member ends.
//
// A member counts only if its header is the one enc writes (the header
// holds a time and an OS byte that decoding ignores).
func (e *earlierBlocks) gzipMembers(enc *blockEncoder) error {
	empty, err := enc.encode(nil)
	if err != nil {
		return err
	}
	const gzipHeader = 10 // RFC 1952, with no optional fields
	hdr := bytes.Clone(empty[:gzipHeader])
	br := bytes.NewReader(e.data)
	var zr gzip.Reader
	var out bytes.Buffer
	for br.Len() > 0 {
		off := len(e.data) - br.Len()
		if err := zr.Reset(br); err != nil {
			return fmt.Errorf("offset %d: %w", off, err)
		}
		zr.Multistream(false)
		out.Reset()
		if _, err := io.Copy(&out, io.LimitReader(&zr, maxEarlierBlock+1)); err != nil {
			return fmt.Errorf("offset %d: %w", off, err)
		}
		if out.Len() > maxEarlierBlock {
			return fmt.Errorf("offset %d: a member of over %d bytes", off, maxEarlierBlock)
		}
		if !bytes.HasPrefix(e.data[off:], hdr) {
			return fmt.Errorf("offset %d: a gzip header this exporter does not write", off)
		}
		e.blocks[sha256.Sum256(out.Bytes())] = span{off, len(e.data) - br.Len()}
	}
	return nil
}
