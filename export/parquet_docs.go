package export

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"log/slog"
	"math"
	"sync/atomic"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/flight"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/metadata"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/klauspost/compress/zstd"
	"github.com/smelt-dev/smelt/shards"
)

// Documents Parquet files are written with content-defined pages, so that
// a takedown can copy the compressed pages of an earlier export that hold
// none of the removed documents instead of compressing them again.
//
// Every column's pages are row-aligned: a page group is a run of
// documents, and each of the nine columns has one page holding exactly
// them. A group ends after a document whose id hashes (docPageCut) to 0
// modulo docPageK, or once its documents reach docPageMaxBytes. A page's
// bytes then depend only on its own documents: values are PLAIN (a
// dictionary would tie pages together), definition levels are the page's
// own, each page is compressed alone, and headers carry no statistics.
// Removing a document changes only the page group that held it (and,
// when it was a cut point, merges that group with the next).
//
// Row groups end at page-group boundaries once their documents reach
// RowGroupBytes (shards.DocBytes): a page's bytes do not depend on its
// row group, and column-chunk metadata is computed from the pages.
//
// Arrow's pqarrow wrote these files before; it cuts pages by size, per
// column, and compresses each with a new zstd encoder, so no page could
// be reused. Measured numbers are in docs/formats.md.

// docPageK is the expected number of documents in a page group. On 100 MB
// of real text (BenchmarkParquetDocs, docs/formats.md), after a random
// 1 % removal: k=16 leaves 82 % of the documents' bytes in page groups
// that are copied, for files 2.4 % larger than pqarrow's 8 MiB pages;
// k=64 66 % (+0.5 %), k=8 88 % (+4 %). A variable only for the
// benchmark, which compares several.
var docPageK uint64 = 16

// docPageMaxBytes ends a page group whatever the ids (a run of documents
// with no cut point, or very long ones).
const docPageMaxBytes = 8 << 20

// docZstdLevel is the zstd level of document pages.
var docZstdLevel = zstd.SpeedDefault

// docPagesKey is the footer key naming the page layout; reuse copies
// pages only from a file with the same value.
const docPagesKey = "smelt.pages"

func docPagesValue() string {
	return fmt.Sprintf("cdc1 k=%d max=%d zstd=%d", docPageK, docPageMaxBytes, docZstdLevel)
}

// docPageCut reports whether a page group ends after the document id: a
// pure function of the id (FNV-1a 64 of a domain-separated id, finished
// with a 64-bit mixer so that all its bits count).
func docPageCut(id string) bool { return docPageCutK(id, docPageK) }

// docPageCutK is docPageCut for k documents a group on average.
func docPageCutK(id string, k uint64) bool {
	h := fnv.New64a()
	io.WriteString(h, "smelt/parquet-page\x00")
	io.WriteString(h, id)
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x%k == 0
}

// Counters of document page groups, for tests and logs: copied from an
// earlier export, and compressed.
var (
	docGroupsCopied  atomic.Int64
	docGroupsEncoded atomic.Int64
	docBytesCopied   atomic.Int64 // shards.DocBytes of the groups
	docBytesEncoded  atomic.Int64
)

const docColumns = 9

// docColumn is one column's page being built and its row-group chunk.
type docColumn struct {
	nullable bool
	vals     []byte     // the page's PLAIN values
	def      []levelRun // the page's definition levels (nullable columns)
	chunk    []byte     // the row group's pages (header and data)
	uncomp   int64      // the chunk's size uncompressed, headers included
	pages    int32
}

// docParquet writes one documents Parquet file.
type docParquet struct {
	w      *tellWriter
	meta   *metadata.FileMetaDataBuilder
	codec  *pageCodec
	cols   [docColumns]docColumn
	limit  int64
	reuse  *pageReuse // the earlier file's pages, or nil
	ordRG  int16
	closed bool

	rows       int   // in the page group
	groupBytes int64 // shards.DocBytes of the page group
	rgRows     int
	rgBytes    int64
	src, cbuf  []byte

	copied, encoded int
}

// docProps are the writer properties behind the footer's column
// metadata: the codec, PLAIN everywhere.
func docProps(codec compress.Compression) *parquet.WriterProperties {
	return parquet.NewWriterProperties(
		parquet.WithCompression(codec),
		parquet.WithDictionaryDefault(false),
		parquet.WithCreatedBy("smelt export"),
	)
}

// newDocParquet starts a documents Parquet file. pc compresses its pages;
// prev, if not nil, is the writer of the previous file, whose buffers it
// takes over (a zstd encoder costs 20 ms to set up, as much as 1 MiB of
// documents to compress; buffers as much again).
func newDocParquet(w io.Writer, codec compress.Compression, pc *pageCodec, limit int64, reuse *pageReuse, prev *docParquet) (*docParquet, error) {
	arrowSchema := ParquetDocSchema()
	props := docProps(codec)
	pqSchema, err := pqarrow.ToParquet(arrowSchema, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return nil, fmt.Errorf("export: parquet schema: %w", err)
	}
	if pqSchema.NumColumns() != docColumns {
		return nil, fmt.Errorf("export: internal error: document schema has %d Parquet columns", pqSchema.NumColumns())
	}
	d := &docParquet{w: &tellWriter{w: w}, codec: pc, limit: limit, reuse: reuse}
	if prev != nil {
		d.src, d.cbuf = prev.src[:0], prev.cbuf[:0]
		for i := range d.cols {
			c := &prev.cols[i]
			d.cols[i] = docColumn{vals: c.vals[:0], def: c.def[:0], chunk: c.chunk[:0]}
		}
	}
	for i, f := range arrowSchema.Fields() {
		c := pqSchema.Column(i)
		want := parquet.Types.ByteArray
		if f.Type.ID() == arrow.FLOAT64 {
			want = parquet.Types.Double
		}
		if c.PhysicalType() != want || c.MaxRepetitionLevel() != 0 || c.MaxDefinitionLevel() != map[bool]int16{false: 0, true: 1}[f.Nullable] {
			return nil, fmt.Errorf("export: internal error: column %s is %v with levels %d/%d", f.Name, c.PhysicalType(), c.MaxDefinitionLevel(), c.MaxRepetitionLevel())
		}
		d.cols[i].nullable = f.Nullable
	}
	kv := metadata.KeyValueMetadata{}
	// What pqarrow.WithStoreSchema stores: Arrow readers get the same
	// types back as from the files pqarrow wrote.
	kv.Append("ARROW:schema", base64.StdEncoding.EncodeToString(flight.SerializeSchema(arrowSchema, memory.DefaultAllocator)))
	kv.Append(docPagesKey, docPagesValue())
	d.meta = metadata.NewFileMetadataBuilder(pqSchema, props, kv)
	if _, err := d.w.Write(parquetMagic); err != nil {
		return nil, fmt.Errorf("export: write parquet: %w", err)
	}
	return d, nil
}

func appendString(dst []byte, s string) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

// add appends a document; it may end a page group and a row group.
func (d *docParquet) add(doc *shards.Document) error {
	if len(doc.Text) > math.MaxInt32/2 || len(doc.Meta) > math.MaxInt32/2 {
		return fmt.Errorf("export: document %s: too large for a Parquet page", doc.ID)
	}
	c := &d.cols
	for i, v := range [...]string{doc.ID, doc.Source, doc.URL, doc.Date, doc.Text, doc.Lang} {
		c[i].vals = appendString(c[i].vals, v)
	}
	c[6].vals = binary.LittleEndian.AppendUint64(c[6].vals, math.Float64bits(doc.LangScore))
	if doc.HasQuality {
		c[7].def = addRun(c[7].def, 1, 1)
		c[7].vals = binary.LittleEndian.AppendUint64(c[7].vals, math.Float64bits(doc.Quality))
	} else {
		c[7].def = addRun(c[7].def, 0, 1)
	}
	if doc.Meta != "" {
		c[8].def = addRun(c[8].def, 1, 1)
		c[8].vals = appendString(c[8].vals, doc.Meta)
	} else {
		c[8].def = addRun(c[8].def, 0, 1)
	}
	d.rows++
	d.groupBytes += shards.DocBytes(doc)
	if docPageCut(doc.ID) || d.groupBytes >= docPageMaxBytes {
		return d.endGroup()
	}
	return nil
}

// endGroup writes the page group built so far (copied from the earlier
// file where it holds the same documents), then the row group if it is
// full.
func (d *docParquet) endGroup() error {
	if d.rows == 0 {
		return nil
	}
	return d.putGroup(d.reuse.find(d.cols[0].vals))
}

// copyGroup writes an earlier file's page group of rows documents,
// holding groupBytes (shards.DocBytes), as the next group: the group
// being built must be empty.
func (d *docParquet) copyGroup(g pageGroup, groupBytes int64) error {
	d.rows, d.groupBytes = g.rows, groupBytes
	return d.putGroup(g.pages)
}

// putGroup writes the page group of d.rows documents: the earlier pages
// g, or (g nil) the pages built from the documents added.
func (d *docParquet) putGroup(g []reusedPage) error {
	if g != nil {
		for i := range d.cols {
			c := &d.cols[i]
			c.chunk = append(c.chunk, g[i].b...)
			c.uncomp += g[i].uncomp
			c.pages++
		}
		d.copied++
		docBytesCopied.Add(d.groupBytes)
	} else {
		for i := range d.cols {
			if err := d.encodePage(&d.cols[i]); err != nil {
				return err
			}
		}
		d.encoded++
		docBytesEncoded.Add(d.groupBytes)
	}
	for i := range d.cols {
		c := &d.cols[i]
		c.vals, c.def = c.vals[:0], c.def[:0]
	}
	d.rgRows += d.rows
	d.rgBytes += d.groupBytes
	d.rows, d.groupBytes = 0, 0
	if d.rgBytes >= d.limit {
		return d.flushRowGroup()
	}
	return nil
}

// encodePage compresses a column's page and appends it to its chunk.
func (d *docParquet) encodePage(c *docColumn) error {
	src := c.vals
	if c.nullable {
		d.src = appendLevels(d.src[:0], c.def)
		d.src = append(d.src, c.vals...)
		src = d.src
	}
	d.cbuf = d.codec.compress(d.cbuf[:0], src)
	if len(src) > math.MaxInt32 || len(d.cbuf) > math.MaxInt32 {
		return fmt.Errorf("export: parquet page of %d bytes", len(src))
	}
	at := len(c.chunk)
	c.chunk = appendPageHeader(c.chunk, int32(len(src)), int32(len(d.cbuf)), crc32.ChecksumIEEE(d.cbuf), int32(d.rows), encPlain)
	c.uncomp += int64(len(c.chunk)-at) + int64(len(src))
	c.chunk = append(c.chunk, d.cbuf...)
	c.pages++
	return nil
}

// flushRowGroup writes the row group's column chunks and their metadata.
func (d *docParquet) flushRowGroup() error {
	if d.rgRows == 0 {
		return nil
	}
	rg := d.meta.AppendRowGroup()
	var total int64
	for i := range d.cols {
		c := &d.cols[i]
		cm := rg.NextColumnChunk()
		start := d.w.n
		if _, err := d.w.Write(c.chunk); err != nil {
			return fmt.Errorf("export: write parquet: %w", err)
		}
		err := cm.Finish(metadata.ChunkMetaInfo{
			NumValues:        int64(d.rgRows),
			IndexPageOffset:  -1,
			DataPageOffset:   start,
			CompressedSize:   int64(len(c.chunk)),
			UncompressedSize: c.uncomp,
		}, false, false, metadata.EncodingStats{DataEncodingStats: map[parquet.Encoding]int32{parquet.Encodings.Plain: c.pages}}, nil)
		if err != nil {
			return fmt.Errorf("export: parquet column metadata: %w", err)
		}
		total += c.uncomp
		c.chunk, c.uncomp, c.pages = c.chunk[:0], 0, 0
	}
	rg.SetNumRows(d.rgRows)
	if err := rg.Finish(total, d.ordRG); err != nil {
		return fmt.Errorf("export: parquet row group: %w", err)
	}
	d.ordRG++
	d.rgRows, d.rgBytes = 0, 0
	return nil
}

// close writes the last groups and the footer.
func (d *docParquet) close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	if err := d.endGroup(); err != nil {
		return err
	}
	if err := d.flushRowGroup(); err != nil {
		return err
	}
	if err := writeParquetFooter(d.w, d.meta); err != nil {
		return err
	}
	if d.reuse != nil {
		slog.Debug("export: parquet pages", "copied", d.copied, "encoded", d.encoded)
	}
	d.reuse = nil // the earlier file, not kept for the next
	docGroupsCopied.Add(int64(d.copied))
	docGroupsEncoded.Add(int64(d.encoded))
	return nil
}

// docPageCodec makes the documents' page codec.
func (e *parquetExporter) docPageCodec() error {
	if e.docCodec == nil || e.docCodec.level != docZstdLevel {
		var err error
		if e.docCodec, err = newPageCodec(parquetCodec(e.opt.Compression), docZstdLevel); err != nil {
			return err
		}
	}
	return nil
}

func (e *parquetExporter) writeDocs(ctx context.Context, w io.Writer, in *Input, path string, info shards.ShardInfo, fi *FileInfo) error {
	codec := parquetCodec(e.opt.Compression)
	if err := e.docPageCodec(); err != nil {
		return err
	}
	var reuse *pageReuse
	if old, ofi, ok := e.reuse.lookup(in, info.Name); ok {
		var err error
		if reuse, err = loadPageReuse(old, ofi, e.docCodec, pageLayout{pages: docPagesValue(), ncols: docColumns, list: -1}); err != nil {
			slog.Warn("export: not reusing an earlier Parquet file", "file", old, "err", err)
			reuse = nil
		}
	}
	d, err := newDocParquet(w, codec, e.docCodec, e.opt.RowGroupBytes, reuse, e.docPrev)
	if err != nil {
		return err
	}
	e.docPrev = d
	fi.Docs, err = forEachDoc(ctx, path, info, d.add)
	if err != nil {
		return err
	}
	return d.close()
}
