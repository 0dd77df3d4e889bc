package export

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/bits"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow/flight"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/metadata"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/smelt-dev/smelt/shards"
)

// tokenParquet writes one Parquet file of token ids (ParquetTokenSchema).
//
// smelt writes every page itself (page headers by hand, parquet_pages.go);
// Arrow's parquet/metadata builds the column-chunk metadata and the footer,
// with the schema pqarrow derives from the Arrow schema, which is stored
// too, as pqarrow stores it. Rows are cut into content-defined page groups
// as documents are (parquet_docs.go: after a row whose id hashes to 0
// modulo tokenPageK, or past tokenPageIDs ids), every column one page per
// group, so that a takedown can copy the untouched groups of an earlier
// export (Reuse). id and source are PLAIN byte arrays, n_tokens PLAIN
// int64. The input_ids pages, nearly all of the file, are not Arrow's
// generic path, which costs far more than the bytes it writes: it
// computes and RLE-encodes a repetition and a definition level for every
// token, one value at a time, and writes ids PLAIN as 4-byte INT32, which
// zstd then compresses at less than half the speed per id of 2-byte ids
// (19.9 vs 8.4 ns an id, fastest level). Here the levels are runs computed
// from document lengths (two runs a document), and the ids are dictionary
// indices into a dictionary that is the vocabulary itself (the int32s
// 0..vocab-1, the same page in every row group, so a data page does not
// depend on its row group), so an index is the id and, for GPT-2's 50,257
// ids (16 bits), a bit-packed run is the ids' own little-endian bytes.
// Readers see an ordinary dictionary-encoded list<uint16> column
// (RLE_DICTIONARY data pages, PLAIN dictionary page).
// Measured on 33.7 M GPT-2 ids, one core: the pqarrow writer 37 MB of ids
// per CPU-second, this writer 100+ (see BenchmarkExport and the README).
type tokenParquet struct {
	w      *tellWriter
	meta   *metadata.FileMetaDataBuilder
	pc     *pageCodec
	vocab  int
	maxDef uint8  // an id's definition level
	bw     int    // bit width of a dictionary index
	dict   []byte // the dictionary page, header and data
	// dictUncomp is its size uncompressed, header included.
	dictUncomp int64
	limit      int64 // row group size (uncompressed bytes, about)
	reuse      *pageReuse
	ordRG      int16
	closed     bool

	copied, encoded int

	*tokenBufs
}

// tokenBufs are a token Parquet writer's buffers, kept from one file to
// the next by the exporter.
type tokenBufs struct {
	// The columns' pages being built (id, source, n_tokens: PLAIN
	// values; input_ids: below) and the row group's chunks.
	cols    [4]docColumn
	rows    int // in the page group
	rgRows  int
	rgVals  int // input_ids level entries in the row group
	rgBytes int64

	// The input_ids page being built: its values and level runs.
	p16     []uint16
	p32     []uint32
	rep     []levelRun
	def     []levelRun
	pvals   int // level entries (tokens, and one for each empty document)
	scratch []byte
	cbuf    []byte
}

// levelRun is a run of n equal levels of value v.
type levelRun struct {
	v uint8
	n int
}

// Token rows are cut into page groups like documents (docPageCutK, on
// the row's id), every column one page per group, so that a takedown can
// copy the groups that lost no row; tokenPageK rows a group on average.
// Token ids compress less well in small pages than text: on
// BenchmarkExport's 32 M GPT-2 ids (zstd) the files were 47.9 MB with the
// 1 Mi-id pages before, 53.7 with k=16, 51.0 with k=64, 49.0 with k=256.
var tokenPageK uint64 = 64

func tokenPagesValue() string {
	return fmt.Sprintf("cdc1-tokens k=%d max=%d zstd=1", tokenPageK, tokenPageIDs)
}

// Token page groups end at the first document boundary past this many
// ids whatever the ids.
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

// writeParquetFooter writes a Parquet file's end: the file metadata, its
// length and the magic.
func writeParquetFooter(w io.Writer, meta *metadata.FileMetaDataBuilder) error {
	fmd, err := meta.Finish()
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
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("export: write parquet: %w", err)
	}
	return nil
}

func newTokenParquet(w io.Writer, tok *shards.TokenizerInfo, pc *pageCodec, limit int64, bufs *tokenBufs, reuse func(dict []byte) *pageReuse) (*tokenParquet, error) {
	arrowSchema := ParquetTokenSchema(tok)
	props := parquet.NewWriterProperties(
		parquet.WithCompression(pc.kind),
		parquet.WithDictionaryDefault(false),
		parquet.WithDictionaryFor(ColInputIDs+".list.element", true),
		parquet.WithCreatedBy("smelt export"),
	)
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
	for _, i := range []int{0, 1, 3} {
		if c := pqSchema.Column(i); c.MaxDefinitionLevel() != 0 || c.MaxRepetitionLevel() != 0 {
			return nil, fmt.Errorf("export: internal error: token column %d has levels %d/%d", i, c.MaxDefinitionLevel(), c.MaxRepetitionLevel())
		}
	}
	kv := metadata.KeyValueMetadata{}
	md := arrowSchema.Metadata()
	for i, k := range md.Keys() {
		kv.Append(k, md.Values()[i])
	}
	// What pqarrow.WithStoreSchema stores: readers then get the Arrow
	// types back exactly (list<uint16> not null).
	kv.Append("ARROW:schema", base64.StdEncoding.EncodeToString(flight.SerializeSchema(arrowSchema, memory.DefaultAllocator)))
	kv.Append(docPagesKey, tokenPagesValue())
	t := &tokenParquet{
		w:         &tellWriter{w: w},
		meta:      metadata.NewFileMetadataBuilder(pqSchema, props, kv),
		pc:        pc,
		vocab:     tok.VocabSize,
		maxDef:    uint8(c.MaxDefinitionLevel()),
		bw:        max(1, bits.Len(uint(tok.VocabSize-1))),
		limit:     limit,
		tokenBufs: bufs,
	}
	bufs.reset()
	// The dictionary page, the same in every row group: the vocabulary
	// (int32 0..vocab-1, PLAIN).
	raw := make([]byte, 4*t.vocab)
	for i := 0; i < t.vocab; i++ {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(i))
	}
	z := pc.compress(nil, raw)
	t.dict = appendDictPageHeader(nil, int32(len(raw)), int32(len(z)), crc32.ChecksumIEEE(z), int32(t.vocab))
	t.dictUncomp = int64(len(t.dict)) + int64(len(raw))
	t.dict = append(t.dict, z...)
	if reuse != nil {
		t.reuse = reuse(t.dict)
	}
	if _, err := t.w.Write(parquetMagic); err != nil {
		return nil, fmt.Errorf("export: write parquet: %w", err)
	}
	return t, nil
}

// add appends one document; tokens are u16 or u32 (the other nil). It may
// write a row group.
func (t *tokenParquet) add(id, source string, u16 []uint16, u32 []uint32) error {
	c := &t.cols
	c[0].vals = appendString(c[0].vals, id)
	c[1].vals = appendString(c[1].vals, source)
	n := len(u16) + len(u32)
	c[3].vals = binary.LittleEndian.AppendUint64(c[3].vals, uint64(n))
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
	t.rows++
	t.rgBytes += int64(n)*2 + int64(len(id)) + 16
	if docPageCutK(id, tokenPageK) || len(t.p16)+len(t.p32) >= tokenPageIDs {
		return t.endGroup()
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

// endGroup writes the page group built so far (copied from the earlier
// file where it holds the same rows), then the row group if it is full.
func (t *tokenParquet) endGroup() error {
	if t.rows == 0 {
		return nil
	}
	if g := t.reuse.find(t.cols[0].vals); g != nil {
		for i := range t.cols {
			c := &t.cols[i]
			c.chunk = append(c.chunk, g[i].b...)
			c.uncomp += g[i].uncomp
			c.pages++
		}
		t.copied++
	} else {
		for _, i := range []int{0, 1, 3} {
			c := &t.cols[i]
			if err := t.appendPage(c, c.vals, t.rows, encPlain); err != nil {
				return err
			}
		}
		b := appendLevels(t.scratch[:0], t.rep)
		b = appendLevels(b, t.def)
		b = append(b, byte(t.bw))
		if len(t.p32) > 0 {
			b = appendPacked(b, t.p32, t.bw)
		} else {
			b = appendPacked(b, t.p16, t.bw)
		}
		t.scratch = b
		if err := t.appendPage(&t.cols[2], b, t.pvals, encRLEDict); err != nil {
			return err
		}
		t.encoded++
	}
	for i := range t.cols {
		t.cols[i].vals = t.cols[i].vals[:0]
	}
	t.rgVals += t.pvals
	t.rep, t.def, t.pvals = t.rep[:0], t.def[:0], 0
	t.p16, t.p32 = t.p16[:0], t.p32[:0]
	t.rgRows += t.rows
	t.rows = 0
	if t.rgBytes >= t.limit {
		return t.flushRowGroup()
	}
	return nil
}

// appendPage compresses a page's data and appends it to a column's chunk.
func (t *tokenParquet) appendPage(c *docColumn, src []byte, nvals int, enc int32) error {
	t.cbuf = t.pc.compress(t.cbuf[:0], src)
	if len(src) > math.MaxInt32 || len(t.cbuf) > math.MaxInt32 || nvals > math.MaxInt32 {
		return fmt.Errorf("export: parquet page of %d bytes", len(src))
	}
	at := len(c.chunk)
	c.chunk = appendPageHeader(c.chunk, int32(len(src)), int32(len(t.cbuf)), crc32.ChecksumIEEE(t.cbuf), int32(nvals), enc)
	c.uncomp += int64(len(c.chunk)-at) + int64(len(src))
	c.chunk = append(c.chunk, t.cbuf...)
	c.pages++
	return nil
}

// flushRowGroup writes the row group's column chunks and their metadata.
func (t *tokenParquet) flushRowGroup() error {
	if t.rgRows == 0 {
		return nil
	}
	rg := t.meta.AppendRowGroup()
	var total int64
	for i := range t.cols {
		c := &t.cols[i]
		cm := rg.NextColumnChunk()
		start := t.w.n
		info := metadata.ChunkMetaInfo{NumValues: int64(t.rgRows), IndexPageOffset: -1, DataPageOffset: start,
			CompressedSize: int64(len(c.chunk)), UncompressedSize: c.uncomp}
		stats := metadata.EncodingStats{DataEncodingStats: map[parquet.Encoding]int32{parquet.Encodings.Plain: c.pages}}
		if i == 2 {
			if _, err := t.w.Write(t.dict); err != nil {
				return fmt.Errorf("export: write parquet: %w", err)
			}
			info.DictPageOffset = start
			info.DataPageOffset = t.w.n
			info.CompressedSize += int64(len(t.dict))
			info.UncompressedSize += t.dictUncomp
			info.NumValues = int64(t.rgVals)
			stats = metadata.EncodingStats{
				DictEncodingStats: map[parquet.Encoding]int32{parquet.Encodings.Plain: 1},
				DataEncodingStats: map[parquet.Encoding]int32{parquet.Encodings.RLEDict: c.pages},
			}
		}
		if _, err := t.w.Write(c.chunk); err != nil {
			return fmt.Errorf("export: write parquet: %w", err)
		}
		if err := cm.Finish(info, i == 2, false, stats, nil); err != nil {
			return fmt.Errorf("export: parquet column metadata: %w", err)
		}
		total += info.UncompressedSize
		c.chunk, c.uncomp, c.pages = c.chunk[:0], 0, 0
	}
	rg.SetNumRows(t.rgRows)
	if err := rg.Finish(total, t.ordRG); err != nil {
		return fmt.Errorf("export: parquet row group: %w", err)
	}
	t.ordRG++
	t.rgRows, t.rgBytes, t.rgVals = 0, 0, 0
	return nil
}

// reset empties the buffers for a new file.
func (b *tokenBufs) reset() {
	for i := range b.cols {
		c := &b.cols[i]
		c.vals, c.chunk, c.uncomp, c.pages = c.vals[:0], c.chunk[:0], 0, 0
	}
	b.rows, b.rgRows, b.rgBytes, b.rgVals = 0, 0, 0, 0
	b.rep, b.def, b.pvals = b.rep[:0], b.def[:0], 0
	b.p16, b.p32 = b.p16[:0], b.p32[:0]
}

// close writes the last groups and the footer.
func (t *tokenParquet) close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	if err := t.endGroup(); err != nil {
		return err
	}
	if err := t.flushRowGroup(); err != nil {
		return err
	}
	if err := writeParquetFooter(t.w, t.meta); err != nil {
		return err
	}
	t.reuse = nil
	tokenGroupsCopied.Add(int64(t.copied))
	tokenGroupsEncoded.Add(int64(t.encoded))
	return nil
}

// Counters of token page groups, for tests: copied from an earlier
// export, and compressed.
var (
	tokenGroupsCopied  atomic.Int64
	tokenGroupsEncoded atomic.Int64
)
