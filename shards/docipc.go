package shards

import (
	"bufio"
	"fmt"
	"runtime"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/endian"
	flatbuffers "github.com/google/flatbuffers/go"
	"github.com/klauspost/compress/zstd"
)

// This file writes document shards (and any Arrow file of utf8 and float64
// columns: the shards a takedown rewrites) by hand, with arrowwrite.go's
// machinery. Arrow Go's ipc.FileWriter compresses each buffer through a
// streaming zstd encoder at SpeedDefault whose history it reallocates and
// clears per buffer and whose blocks it hands to goroutines: in a CPU
// profile of a takedown of a 200,000-document run (43.8 CPU-s) that was
// 7.3 s in ensureHist (makeslice, memclr) and 9 s in the async block
// encoders, nearly all of it writing document shards. Here every buffer
// goes through one process-wide encoder with EncodeAll into the batch's
// reused body; the file is the same kind of Arrow IPC file (metadata V5,
// ZSTD buffer compression, the schema and its custom metadata unchanged),
// which Arrow Go, Arrow JS and the fast reader read.
//
// The level, measured with BenchmarkDocWrite (64 MB of real text: the
// shared clean_text files cut into documents, every column filled; the
// whole DocWriter path, record builder included; CPU time of all threads
// per MB of documents, the median of five runs on a 2-core machine under
// a load of 6-8, so the ratios matter more than the absolute figures):
//
//	writer, zstd level         64 MiB shards        1 MiB shards
//	                           CPU-ms/MB  size      CPU-ms/MB  size
//	Arrow Go, 3 (before)       11.9       0.331     20.6       0.337
//	hand, 1 (SpeedFastest)      8.4       0.361      9.5       0.366
//	hand, 3 (SpeedDefault, now) 10.7      0.331     15.1       0.337
//
// (size: file bytes per byte of documents; level 7, SpeedBetterCompression,
// gave 0.310 for about twice Arrow Go's CPU). At Arrow Go's own level the
// hand writer makes files of the same size for 10% (64 MiB shards) to 27%
// (1 MiB shards) less CPU: the per-file and per-buffer encoder set-up
// (Arrow Go allocated 1.6 GB to write the 64 MB as 1 MiB shards, this
// writer 0.15 GB). Level 1 would cost 30% to 54% less than Arrow Go, but
// for files 9% larger; docZstd keeps level 3: a run holds three copies of
// its documents (ingest, filter, dedup), and their size on disk is what
// a crawl-sized run runs out of first.

// docZstd compresses document shards' buffers: one encoder for the
// process, each EncodeAll independent of the others, so the bytes do not
// depend on which of its internal encoders runs a buffer (or on
// GOMAXPROCS).
var docZstd = sync.OnceValue(func() *zstd.Encoder {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	if err != nil {
		panic(fmt.Sprintf("zstd encoder: %v", err)) // only on invalid options
	}
	return enc
})

// docBodies recycles the compressed batch bodies of finished files (a
// few MiB each at the default batch size).
var docBodies sync.Pool

// handFields returns the hand-written schema's fields for schema, or
// false when it has a column this writer does not cover (anything but
// utf8 and float64, or field metadata), which then goes to Arrow Go.
func handFields(schema *arrow.Schema) ([]fbField, bool) {
	// Buffers are written as the host holds them: little-endian only.
	if schema.Endianness() != endian.LittleEndian || endian.NativeEndian != endian.LittleEndian {
		return nil, false
	}
	fields := make([]fbField, schema.NumFields())
	for i, f := range schema.Fields() {
		if f.HasMetadata() {
			return nil, false
		}
		fields[i] = fbField{Name: f.Name, Nullable: f.Nullable}
		switch f.Type.ID() {
		case arrow.STRING:
			fields[i].Type = fbTypeUtf8
		case arrow.FLOAT64:
			fields[i].Type = fbTypeFloat
		default:
			return nil, false
		}
	}
	return fields, true
}

// handIPC is an Arrow IPC file of utf8 and float64 columns being written.
type handIPC struct {
	schema     *arrow.Schema
	fields     []fbField
	keys, vals []string
	bw         *bufio.Writer
	w          arrowFileWriter
	// scratch holds a rebased offsets buffer or a shifted bitmap until
	// buffer has compressed it.
	scratch []byte
	// idCol and textCol are the id and text columns (utf8), -1 when the
	// schema lacks one: the text buffer is then one frame.
	idCol, textCol int
	// ends are the current batch's text frame ends (docframes.go).
	spans []frameSpan
	ends  []int64
}

// textColumns returns the indices of the utf8 id and text columns of
// fields, -1 for a missing one.
func textColumns(fields []fbField) (idCol, textCol int) {
	idCol, textCol = -1, -1
	for i, f := range fields {
		switch {
		case f.Name == ColID && f.Type == fbTypeUtf8 && idCol < 0:
			idCol = i
		case f.Name == ColText && f.Type == fbTypeUtf8 && textCol < 0:
			textCol = i
		}
	}
	if idCol < 0 || textCol < 0 {
		return -1, -1
	}
	return idCol, textCol
}

// newHandIPC starts the file on out (magic and schema message).
func newHandIPC(out *bufio.Writer, schema *arrow.Schema, fields []fbField, enc *zstd.Encoder) (*handIPC, error) {
	md := schema.Metadata()
	h := &handIPC{schema: schema, fields: fields, keys: md.Keys(), vals: md.Values(), bw: out}
	h.idCol, h.textCol = textColumns(fields)
	var body []byte
	if b, ok := docBodies.Get().(*[]byte); ok {
		body = (*b)[:0]
	}
	h.w = arrowFileWriter{
		out:         func(p []byte) error { _, err := out.Write(p); return err },
		fb:          flatbuffers.NewBuilder(1024),
		schema:      func(b *flatbuffers.Builder) flatbuffers.UOffsetT { return buildSchema(b, h.fields, h.keys, h.vals) },
		enc:         enc,
		rawIfLarger: true,
		body:        body,
	}
	return h, h.w.start()
}

// validity adds a column's validity bitmap: none when it has no nulls,
// else its bits from the array's offset on, copied to start at bit 0 with
// the bits past the last row zero.
func (h *handIPC) validity(d arrow.ArrayData, nulls int) {
	if nulls == 0 {
		h.w.buffer(nil)
		return
	}
	n := d.Len()
	h.scratch = append(h.scratch[:0], make([]byte, bitutil.BytesForBits(int64(n)))...)
	bitutil.CopyBitmap(d.Buffers()[0].Bytes(), d.Offset(), n, h.scratch, 0)
	h.w.buffer(h.scratch)
}

// write appends rec as one record batch. Arrays may be slices (a non-zero
// offset): their offsets are rebased to start at 0 and their bitmaps
// shifted, as Arrow Go's writer does.
func (h *handIPC) write(rec arrow.Record) error {
	if !rec.Schema().Equal(h.schema) {
		return fmt.Errorf("record batch schema %s differs from the file's %s", rec.Schema(), h.schema)
	}
	rows := rec.NumRows()
	w := &h.w
	w.resetBatch()
	for c, col := range rec.Columns() {
		if int64(col.Len()) != rows {
			return fmt.Errorf("column %s has %d rows, batch %d", h.fields[c].Name, col.Len(), rows)
		}
		nulls := col.NullN()
		w.nodeNulls(rows, int64(nulls))
		switch a := col.(type) {
		case *array.String:
			h.validity(a.Data(), nulls)
			if rows == 0 {
				w.buffer([]byte{0, 0, 0, 0}) // offsets: one 0
				w.buffer(nil)
				continue
			}
			offs := a.ValueOffsets()
			base := offs[0]
			if c == h.textCol {
				h.textFrames(rec.Column(h.idCol), offs)
			}
			if base != 0 {
				h.scratch = h.scratch[:0]
				for _, o := range offs {
					h.scratch = append(h.scratch, byte(o-base), byte((o-base)>>8), byte((o-base)>>16), byte((o-base)>>24))
				}
				w.buffer(h.scratch)
			} else {
				w.buffer(arrow.Int32Traits.CastToBytes(offs))
			}
			if c == h.textCol {
				w.bufferFrames(a.ValueBytes(), h.ends)
			} else {
				w.buffer(a.ValueBytes())
			}
		case *array.Float64:
			h.validity(a.Data(), nulls)
			w.buffer(arrow.Float64Traits.CastToBytes(a.Float64Values()))
		default:
			return fmt.Errorf("column %s: %s arrays are not written here", h.fields[c].Name, col.DataType())
		}
	}
	return w.flushBatch(rows)
}

// textFrames sets h.ends to the text frames' ends for a batch whose id
// column is ids and whose text offsets are offs (docframes.go).
func (h *handIPC) textFrames(ids arrow.Array, offs []int32) {
	h.spans, h.ends = h.spans[:0], h.ends[:0]
	a, ok := ids.(*array.String)
	if !ok || !frameText {
		return
	}
	base := int64(offs[0])
	h.spans = appendTextFrames(h.spans, len(offs)-1,
		func(i int) []byte {
			if a.IsNull(i) {
				return nil
			}
			return unsafeBytes(a.Value(i))
		},
		func(i int) int64 { return int64(offs[i+1]) - base })
	for _, s := range h.spans {
		h.ends = append(h.ends, s.end)
	}
}

// finish writes the footer and flushes the file.
func (h *handIPC) finish() error {
	if err := h.w.finish(); err != nil {
		return err
	}
	return h.bw.Flush()
}

// release hands the batch body to the next file.
func (h *handIPC) release() {
	if b := h.w.body; cap(b) > 0 && cap(b) <= 64<<20 {
		b = b[:0]
		docBodies.Put(&b)
	}
	h.w.body = nil
}
