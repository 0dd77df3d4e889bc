package export

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/klauspost/compress/zstd"
)

// pageCodec compresses (and, for reuse, decompresses) whole Parquet pages
// with the codec of the Compression option. One zstd encoder serves a
// whole file: Arrow's codec starts a new one for every page, which for
// the documents' small content-defined pages would cost more than the
// compression.
type pageCodec struct {
	kind  compress.Compression
	level zstd.EncoderLevel
	zenc  *zstd.Encoder
	zdec  *zstd.Decoder
	other compress.Codec
}

func newPageCodec(kind compress.Compression, level zstd.EncoderLevel) (*pageCodec, error) {
	p := &pageCodec{kind: kind, level: level}
	var err error
	switch kind {
	case compress.Codecs.Zstd:
		p.zenc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true))
		if err != nil {
			return nil, fmt.Errorf("export: zstd: %w", err)
		}
	case compress.Codecs.Uncompressed:
	default:
		if p.other, err = compress.GetCodec(kind); err != nil {
			return nil, fmt.Errorf("export: parquet codec: %w", err)
		}
	}
	return p, nil
}

// compress appends src, compressed, to dst.
func (p *pageCodec) compress(dst, src []byte) []byte {
	switch {
	case p.zenc != nil:
		return p.zenc.EncodeAll(src, dst)
	case p.other != nil:
		off := len(dst)
		bound := int(p.other.CompressBound(int64(len(src))))
		dst = slices.Grow(dst, bound)
		c := p.other.Encode(dst[off:off+bound], src)
		if len(c) > 0 && &c[0] == &dst[off : off+1][0] {
			return dst[:off+len(c)]
		}
		return append(dst, c...)
	}
	return append(dst, src...)
}

// maxReusedPage bounds the size of an id page reuse decompresses (a
// group's ids are far smaller: its documents stop at 8 MiB).
const maxReusedPage = 256 << 20

// decompress returns src decompressed into dst's storage; size is the
// page's uncompressed size, checked.
func (p *pageCodec) decompress(dst, src []byte, size int) ([]byte, error) {
	if size < 0 || size > maxReusedPage {
		return nil, fmt.Errorf("page of %d bytes", size)
	}
	var out []byte
	var err error
	switch {
	case p.kind == compress.Codecs.Zstd:
		if p.zdec == nil {
			if p.zdec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxReusedPage)); err != nil {
				return nil, err
			}
		}
		out, err = p.zdec.DecodeAll(src, dst[:0])
	case p.other != nil:
		if cap(dst) < size {
			dst = make([]byte, size)
		}
		out = p.other.Decode(dst[:size], src)
	default:
		out = src
	}
	if err != nil {
		return nil, err
	}
	if len(out) != size {
		return nil, fmt.Errorf("page decompresses to %d bytes, its header says %d", len(out), size)
	}
	return out, nil
}

// A data page header (Parquet's PageHeader with a DataPageHeader, v1) in
// Thrift's compact protocol, written by hand: smelt's pages always have
// the same five fields, and the parser for reuse accepts exactly those.
// Thrift compact: a field header byte is (id delta << 4) | type, i32s
// are zigzag varints, a struct ends with a 0 byte.
const (
	thriftI32    = 5
	thriftStruct = 12
	encPlain     = 0
	encRLE       = 3
	encRLEDict   = 8
)

func appendI32Field(dst []byte, delta byte, v int32) []byte {
	dst = append(dst, delta<<4|thriftI32)
	return binary.AppendUvarint(dst, uint64(uint32(v<<1)^uint32(v>>31)))
}

// appendPageHeader appends the header of a data page (v1, RLE levels) of
// nvals values (rows, nulls included; for a list column, level entries)
// in encoding enc (PLAIN, or RLE_DICTIONARY for token ids), whose data
// (as written, compressed) has the CRC-32 crc: what readers may check,
// and what reuse checks before it copies a page.
func appendPageHeader(dst []byte, uncompressed, compressed int32, crc uint32, nvals int32, enc int32) []byte {
	dst = appendI32Field(dst, 1, 0) // type: DATA_PAGE
	dst = appendI32Field(dst, 1, uncompressed)
	dst = appendI32Field(dst, 1, compressed)
	dst = appendI32Field(dst, 1, int32(crc))
	dst = append(dst, 1<<4|thriftStruct) // field 5: data_page_header
	dst = appendI32Field(dst, 1, nvals)
	dst = appendI32Field(dst, 1, enc)
	dst = appendI32Field(dst, 1, encRLE) // definition levels
	dst = appendI32Field(dst, 1, encRLE) // repetition levels
	return append(dst, 0, 0)
}

// appendDictPageHeader appends the header of a PLAIN dictionary page of
// nvals values.
func appendDictPageHeader(dst []byte, uncompressed, compressed int32, crc uint32, nvals int32) []byte {
	dst = appendI32Field(dst, 1, 2) // type: DICTIONARY_PAGE
	dst = appendI32Field(dst, 1, uncompressed)
	dst = appendI32Field(dst, 1, compressed)
	dst = appendI32Field(dst, 1, int32(crc))
	dst = append(dst, 3<<4|thriftStruct) // field 7: dictionary_page_header
	dst = appendI32Field(dst, 1, nvals)
	dst = appendI32Field(dst, 1, encPlain)
	return append(dst, 0, 0)
}

var errPageHeader = errors.New("not a page header smelt writes")

// pageHeader is a parsed page header.
type pageHeader struct {
	n            int // the header's length
	uncompressed int32
	compressed   int32
	crc          uint32
	nvals        int32
	enc          int32
	dict         bool // a dictionary page
}

// parsePageHeader reads a header appendPageHeader or appendDictPageHeader
// wrote at the start of b. Anything else is an error.
func parsePageHeader(b []byte) (h pageHeader, err error) {
	n := 0
	field := func() (int32, error) {
		if n >= len(b) || b[n] != 1<<4|thriftI32 {
			return 0, errPageHeader
		}
		n++
		u, k := binary.Uvarint(b[n:])
		if k <= 0 || u > 1<<32-1 {
			return 0, errPageHeader
		}
		n += k
		x := uint32(u)
		return int32(x>>1) ^ -int32(x&1), nil
	}
	var v [8]int32
	for i := 0; i < 4; i++ {
		if v[i], err = field(); err != nil {
			return h, err
		}
	}
	if n >= len(b) {
		return h, errPageHeader
	}
	sub := 4
	switch {
	case v[0] == 0 && b[n] == 1<<4|thriftStruct:
	case v[0] == 2 && b[n] == 3<<4|thriftStruct:
		h.dict, sub = true, 2
	default:
		return h, errPageHeader
	}
	n++
	for i := 4; i < 4+sub; i++ {
		if v[i], err = field(); err != nil {
			return h, err
		}
	}
	if n+2 > len(b) || b[n] != 0 || b[n+1] != 0 {
		return h, errPageHeader
	}
	h.n = n + 2
	h.uncompressed, h.compressed, h.crc, h.nvals, h.enc = v[1], v[2], uint32(v[3]), v[4], v[5]
	if h.uncompressed < 0 || h.compressed < 0 || h.nvals < 0 || (h.enc != encPlain && h.enc != encRLEDict) {
		return h, errPageHeader
	}
	if !h.dict && (v[6] != encRLE || v[7] != encRLE) {
		return h, errPageHeader
	}
	return h, nil
}
