package export

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow/flight"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/metadata"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/klauspost/compress/zstd"
	"github.com/smelt-dev/smelt/shards"
)

// tokenParquet writes one Parquet file of token ids (ParquetTokenSchema).
//
// Arrow's parquet/file and parquet/metadata packages write the file's
// structure: page headers, column chunk metadata and the footer (all the
// Thrift), with the schema pqarrow derives from the Arrow schema, which is
// stored too, as pqarrow stores it. The id, source and n_tokens columns go
// through Arrow's column writers. The pages of input_ids, nearly all of the
// file, smelt encodes itself, because Arrow's generic path costs far more
// than the bytes it writes: it computes and RLE-encodes a repetition and a
// definition level for every token, one value at a time, and writes ids
// PLAIN as 4-byte INT32, which zstd then compresses at less than half the
// speed per id of 2-byte ids (19.9 vs 8.4 ns an id, fastest level). Here the levels are runs computed from document lengths (two
// runs a document), and the ids are dictionary indices into a dictionary
// that is the vocabulary itself (the int32s 0..vocab-1), so an index is the
// id and, for GPT-2's 50,257 ids (16 bits), a bit-packed run is the ids'
// own little-endian bytes. Readers see an ordinary dictionary-encoded
// list<uint16> column (RLE_DICTIONARY data pages, PLAIN dictionary page).
// Measured on 33.7 M GPT-2 ids, one core: the pqarrow writer 37 MB of ids
// per CPU-second, this writer 100+ (see BenchmarkExport and the README).
type tokenParquet struct {
	w      *tellWriter
	props  *parquet.WriterProperties
	meta   *metadata.FileMetaDataBuilder
	codec  compress.Compression
	zenc   *zstd.Encoder
	other  compress.Codec // the codec of token pages when not zstd
	vocab  int
	maxDef uint8  // an id's definition level
	bw     int    // bit width of a dictionary index
	dict   []byte // the dictionary page: int32 0..vocab-1, PLAIN
	limit  int64  // row group size (uncompressed bytes, about)
	ordRG  int16
	closed bool

	*tokenBufs
}

// tokenBufs are a token Parquet writer's buffers, kept from one file to
// the next by the exporter.
type tokenBufs struct {
	// The row group being built: rows, and the token pages written so far
	// (compressed, concatenated in pageData).
	arena     []byte // ids and sources, back to back
	bounds    []int  // where each id and source ends in arena
	ids, srcs []parquet.ByteArray
	ntok      []int64
	pages     []tokenPage
	pageData  []byte
	rgBytes   int64

	// The page being built: its values and level runs.
	p16     []uint16
	p32     []uint32
	rep     []levelRun
	def     []levelRun
	pvals   int // level entries (tokens, and one for each empty document)
	scratch []byte
}

type tokenPage struct {
	off, n       int // in pageData
	nvals        int32
	uncompressed int32
}

// levelRun is a run of n equal levels of value v.
type levelRun struct {
	v uint8
	n int
}

// Token pages end at the first document boundary past this many ids.
var tokenPageIDs = 1 << 20

// tellWriter counts what it writes (Arrow's page writers ask for the
// offset of every page they write).
type tellWriter struct {
	w io.Writer
	n int64
}

func (t *tellWriter) Write(b []byte) (int, error) {
	n, err := t.w.Write(b)
	t.n += int64(n)
	return n, err
}

// Tell is the number of bytes written so far.
func (t *tellWriter) Tell() int64 { return t.n }

var parquetMagic = []byte("PAR1")

func newTokenParquet(w io.Writer, tok *shards.TokenizerInfo, codec compress.Compression, limit int64, bufs *tokenBufs) (*tokenParquet, error) {
	arrowSchema := ParquetTokenSchema(tok)
	// zstd's fastest level for the ids (also for the dictionary page,
	// which Arrow compresses with a new encoder each row group: at
	// level 3 that took 6 % of an export).
	props := writerProps(codec, parquet.WithCompressionLevelFor(ColInputIDs+".list.element", 1))
	pqSchema, err := pqarrow.ToParquet(arrowSchema, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return nil, fmt.Errorf("export: parquet schema: %w", err)
	}
	if pqSchema.NumColumns() != 4 {
		return nil, fmt.Errorf("export: internal error: token schema has %d Parquet columns", pqSchema.NumColumns())
	}
	// pqarrow makes the list required and its elements optional (no
	// element is ever null): an id has definition level 2, an empty list
	// 0; every id but a document's first has repetition level 1.
	c := pqSchema.Column(2)
	if c.MaxRepetitionLevel() != 1 || c.MaxDefinitionLevel() < 1 || c.MaxDefinitionLevel() > 2 || c.PhysicalType() != parquet.Types.Int32 {
		return nil, fmt.Errorf("export: internal error: input_ids is %v with levels %d/%d", c.PhysicalType(), c.MaxDefinitionLevel(), c.MaxRepetitionLevel())
	}
	kv := metadata.KeyValueMetadata{}
	md := arrowSchema.Metadata()
	for i, k := range md.Keys() {
		kv.Append(k, md.Values()[i])
	}
	// What pqarrow.WithStoreSchema stores: readers then get the Arrow
	// types back exactly (list<uint16> not null).
	kv.Append("ARROW:schema", base64.StdEncoding.EncodeToString(flight.SerializeSchema(arrowSchema, memory.DefaultAllocator)))
	t := &tokenParquet{
		w:         &tellWriter{w: w},
		props:     props,
		meta:      metadata.NewFileMetadataBuilder(pqSchema, props, kv),
		codec:     codec,
		vocab:     tok.VocabSize,
		maxDef:    uint8(c.MaxDefinitionLevel()),
		bw:        max(1, bits.Len(uint(tok.VocabSize-1))),
		limit:     limit,
		tokenBufs: bufs,
	}
	bufs.reset()
	if want := int(limit) + int(limit)/8 + 1<<20; cap(bufs.pageData) < want {
		// Compressed pages stay below their ids' bytes (plus frames);
		// growing the buffer page by page cost 8 % of an export.
		bufs.pageData = make([]byte, 0, want)
	}
	switch codec {
	case compress.Codecs.Zstd:
		// One encoder for the whole file, at zstd's fastest level: on
		// GPT-2 ids (distinct real text) level 1 compressed 240 MB/s to
		// 69 % of the size, level 3 (Arrow's default) 136 MB/s to 64 %.
		// Arrow's codec also starts a new encoder for every page.
		t.zenc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true))
		if err != nil {
			return nil, fmt.Errorf("export: zstd: %w", err)
		}
	case compress.Codecs.Uncompressed:
	default:
		if t.other, err = compress.GetCodec(codec); err != nil {
			return nil, fmt.Errorf("export: parquet codec: %w", err)
		}
	}
	t.dict = make([]byte, 4*t.vocab)
	for i := 0; i < t.vocab; i++ {
		binary.LittleEndian.PutUint32(t.dict[4*i:], uint32(i))
	}
	if _, err := t.w.Write(parquetMagic); err != nil {
		return nil, fmt.Errorf("export: write parquet: %w", err)
	}
	return t, nil
}

// add appends one document; tokens are u16 or u32 (the other nil). It may
// write a row group.
func (t *tokenParquet) add(id, source string, u16 []uint16, u32 []uint32) error {
	t.arena = append(t.arena, id...)
	t.bounds = append(t.bounds, len(t.arena))
	t.arena = append(t.arena, source...)
	t.bounds = append(t.bounds, len(t.arena))
	n := len(u16) + len(u32)
	t.ntok = append(t.ntok, int64(n))
	if n == 0 {
		t.rep = addRun(t.rep, 0, 1)
		t.def = addRun(t.def, 0, 1)
		t.pvals++
	} else {
		t.rep = addRun(t.rep, 0, 1)
		if n > 1 {
			t.rep = addRun(t.rep, 1, n-1)
		}
		t.def = addRun(t.def, t.maxDef, n)
		t.pvals += n
		t.p16 = append(t.p16, u16...)
		t.p32 = append(t.p32, u32...)
	}
	t.rgBytes += int64(n)*2 + int64(len(id)) + 16
	if len(t.p16)+len(t.p32) >= tokenPageIDs {
		if err := t.flushPage(); err != nil {
			return err
		}
	}
	if t.rgBytes >= t.limit {
		return t.flushRowGroup()
	}
	return nil
}

func addRun(runs []levelRun, v uint8, n int) []levelRun {
	if k := len(runs); k > 0 && runs[k-1].v == v {
		runs[k-1].n += n
		return runs
	}
	return append(runs, levelRun{v, n})
}

// appendLevels appends levels as a 4-byte length and RLE runs (the data
// page v1 layout); levels up to 255 take one byte a run.
func appendLevels(dst []byte, runs []levelRun) []byte {
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	for _, r := range runs {
		dst = binary.AppendUvarint(dst, uint64(r.n)<<1)
		dst = append(dst, r.v)
	}
	binary.LittleEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
	return dst
}

// Bit-packed runs hold at most this many values (a multiple of 8), so that
// no reader meets a run header past what parquet-mr writes in practice.
const packedRun = 4096

// appendPacked appends vals as RLE/bit-packed hybrid bit-packed runs of
// bit width bw, padding the last group of 8 with zeros.
func appendPacked[T uint16 | uint32](dst []byte, vals []T, bw int) []byte {
	for len(vals) > 0 {
		n := min(len(vals), packedRun)
		groups := (n + 7) / 8
		dst = binary.AppendUvarint(dst, uint64(groups)<<1|1)
		run := vals[:n]
		if bw == 16 && littleEndian && unsafe.Sizeof(run[0]) == 2 {
			// 16-bit packing is the ids' little-endian bytes.
			dst = append(dst, unsafe.Slice((*byte)(unsafe.Pointer(&run[0])), 2*n)...)
			for i := n; i < groups*8; i++ {
				dst = append(dst, 0, 0)
			}
		} else {
			var acc uint64
			var nb uint
			for i := 0; i < groups*8; i++ {
				var v uint64
				if i < n {
					v = uint64(run[i])
				}
				acc |= v << nb
				nb += uint(bw)
				for nb >= 8 {
					dst = append(dst, byte(acc))
					acc >>= 8
					nb -= 8
				}
			}
		}
		vals = vals[n:]
	}
	return dst
}

// flushPage encodes and compresses the page being built.
func (t *tokenParquet) flushPage() error {
	if t.pvals == 0 {
		return nil
	}
	off := len(t.pageData)
	b := t.scratch[:0]
	if t.zenc == nil && t.other == nil {
		b = t.pageData // uncompressed: encode in place
	}
	b = appendLevels(b, t.rep)
	b = appendLevels(b, t.def)
	b = append(b, byte(t.bw))
	if len(t.p32) > 0 {
		b = appendPacked(b, t.p32, t.bw)
	} else {
		b = appendPacked(b, t.p16, t.bw)
	}
	var size int
	switch {
	case t.zenc != nil:
		t.scratch, size = b, len(b)
		t.pageData = t.zenc.EncodeAll(b, t.pageData)
	case t.other != nil:
		t.scratch, size = b, len(b)
		bound := int(t.other.CompressBound(int64(len(b))))
		t.pageData = slices.Grow(t.pageData, bound)
		c := t.other.Encode(t.pageData[off:off+bound], b)
		if len(c) > 0 && &c[0] == &t.pageData[off : off+1][0] {
			t.pageData = t.pageData[:off+len(c)] // encoded in place
		} else {
			t.pageData = append(t.pageData, c...)
		}
	default:
		t.pageData, size = b, len(b)-off
	}
	if size > 1<<31-1 {
		return fmt.Errorf("export: parquet page of %d bytes", size)
	}
	t.pages = append(t.pages, tokenPage{off: off, n: len(t.pageData) - off, nvals: int32(t.pvals), uncompressed: int32(size)})
	t.rep, t.def, t.pvals = t.rep[:0], t.def[:0], 0
	t.p16, t.p32 = t.p16[:0], t.p32[:0]
	return nil
}

// flushRowGroup writes the row group built so far, column by column.
func (t *tokenParquet) flushRowGroup() error {
	if len(t.ntok) == 0 {
		return nil
	}
	if err := t.flushPage(); err != nil {
		return err
	}
	t.ids, t.srcs = t.ids[:0], t.srcs[:0]
	for i, at := 0, 0; i < len(t.ntok); i++ {
		mid, end := t.bounds[2*i], t.bounds[2*i+1]
		t.ids = append(t.ids, t.arena[at:mid])
		t.srcs = append(t.srcs, t.arena[mid:end])
		at = end
	}
	rg := t.meta.AppendRowGroup()
	start := t.w.n
	mem := memory.DefaultAllocator
	for col := 0; col < 4; col++ {
		cm := rg.NextColumnChunk()
		pager, err := file.NewPageWriter(t.w, t.codec, t.props.CompressionLevelFor(cm.Descr().Path()), cm, t.ordRG, int16(col), mem, false, nil, nil)
		if err != nil {
			return fmt.Errorf("export: parquet page writer: %w", err)
		}
		switch col {
		case 0, 1:
			vals := t.ids
			if col == 1 {
				vals = t.srcs
			}
			cw := file.NewColumnChunkWriter(cm, pager, t.props).(*file.ByteArrayColumnChunkWriter)
			if _, err := cw.WriteBatch(vals, nil, nil); err != nil {
				return fmt.Errorf("export: parquet write: %w", err)
			}
			if err := cw.Close(); err != nil {
				return fmt.Errorf("export: parquet write: %w", err)
			}
		case 2:
			if _, err := pager.WriteDictionaryPage(file.NewDictionaryPage(memory.NewBufferBytes(t.dict), int32(t.vocab), parquet.Encodings.Plain)); err != nil {
				return fmt.Errorf("export: parquet write: %w", err)
			}
			for _, p := range t.pages {
				page := file.NewDataPageV1(memory.NewBufferBytes(t.pageData[p.off:p.off+p.n]), p.nvals, parquet.Encodings.RLEDict, parquet.Encodings.RLE, parquet.Encodings.RLE, p.uncompressed)
				if _, err := pager.WriteDataPage(page); err != nil {
					return fmt.Errorf("export: parquet write: %w", err)
				}
			}
			if err := pager.Close(true, false); err != nil {
				return fmt.Errorf("export: parquet write: %w", err)
			}
		case 3:
			cw := file.NewColumnChunkWriter(cm, pager, t.props).(*file.Int64ColumnChunkWriter)
			if _, err := cw.WriteBatch(t.ntok, nil, nil); err != nil {
				return fmt.Errorf("export: parquet write: %w", err)
			}
			if err := cw.Close(); err != nil {
				return fmt.Errorf("export: parquet write: %w", err)
			}
		}
	}
	rg.SetNumRows(len(t.ntok))
	if err := rg.Finish(t.w.n-start, t.ordRG); err != nil {
		return fmt.Errorf("export: parquet row group: %w", err)
	}
	t.ordRG++
	t.resetRowGroup()
	return nil
}

func (b *tokenBufs) resetRowGroup() {
	b.ntok, b.arena, b.bounds = b.ntok[:0], b.arena[:0], b.bounds[:0]
	b.pages, b.pageData, b.rgBytes = b.pages[:0], b.pageData[:0], 0
}

// reset empties the buffers for a new file.
func (b *tokenBufs) reset() {
	b.resetRowGroup()
	b.rep, b.def, b.pvals = b.rep[:0], b.def[:0], 0
	b.p16, b.p32 = b.p16[:0], b.p32[:0]
}

// close writes the last row group and the footer.
func (t *tokenParquet) close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	if err := t.flushRowGroup(); err != nil {
		return err
	}
	fmd, err := t.meta.Finish()
	if err != nil {
		return fmt.Errorf("export: parquet footer: %w", err)
	}
	var buf bytes.Buffer
	n, err := fmd.WriteTo(&buf, nil)
	if err != nil {
		return fmt.Errorf("export: parquet footer: %w", err)
	}
	buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(n)))
	buf.Write(parquetMagic)
	if _, err := t.w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("export: write parquet: %w", err)
	}
	return nil
}
