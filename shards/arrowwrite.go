package shards

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"

	flatbuffers "github.com/google/flatbuffers/go"
	"github.com/klauspost/compress/zstd"
)

// This file writes Arrow IPC files by hand for token shards, the one
// schema the tokenize stage writes at speed (docs/formats.md describes the
// layout). Arrow Go's ipc.FileWriter compresses every buffer with
// zstd.NewWriter(nil) at SpeedDefault, a level it does not let a caller
// change, through a streaming encoder whose history it reallocates per
// buffer: in BenchmarkTokenize (GPT-2, 9 MB of text, one core) that
// compression alone was 25% of the stage's CPU, and the stage ran at
// 0.37-0.39x the bare tokenizer's MB per CPU-second. Writing the columns
// from plain slices and compressing each buffer with one reused encoder at
// SpeedFastest (EncodeAll into a reused buffer) is what this file does; the
// result is an ordinary Arrow IPC file (metadata version V5, ZSTD buffer
// compression) that Arrow Go, Arrow JS, pyarrow and Polars read. Even
// level 1 was still 18% of the stage's CPU, so by default (since
// 2026-12-05) the buffers are written uncompressed, straight from the
// column slices: a record batch without a compression field, every buffer
// 8-byte aligned, which a reader can memory-map. Document shards use the
// same machinery, with float64 columns, validity bitmaps and buffers that
// zstd does not shrink stored as they are (docipc.go).

// Arrow flatbuffer enums (format/Schema.fbs, Message.fbs).
const (
	fbMetadataV5        = 4
	fbHeaderSchema      = 1
	fbHeaderRecordBatch = 3
	fbTypeInt           = 2
	fbTypeFloat         = 3
	fbTypeUtf8          = 5
	fbTypeList          = 12
	fbCodecZstd         = 1
	fbPrecisionDouble   = 2
)

// arrowMagic starts and ends an Arrow IPC file.
var arrowMagic = []byte("ARROW1")

// fbField is one field of a hand-written schema: a utf8 string, an integer
// of Bits bits, a float64 (fbTypeFloat) or a list of Elem.
type fbField struct {
	Name     string
	Type     int // fbTypeUtf8, fbTypeInt, fbTypeFloat, fbTypeList
	Bits     int
	Signed   bool
	Nullable bool
	Elem     *fbField
}

// fbBlock locates one record batch in the file, for the footer.
type fbBlock struct {
	offset  int64
	metaLen int32
	bodyLen int64
}

// buildSchema adds an Arrow Schema table to b and returns its offset.
func buildSchema(b *flatbuffers.Builder, fields []fbField, keys, vals []string) flatbuffers.UOffsetT {
	fo := make([]flatbuffers.UOffsetT, len(fields))
	for i := range fields {
		fo[i] = buildField(b, &fields[i])
	}
	fvec := tableVector(b, fo)
	kv := make([]flatbuffers.UOffsetT, len(keys))
	for i := range keys {
		k, v := b.CreateString(keys[i]), b.CreateString(vals[i])
		b.StartObject(2)
		b.PrependUOffsetTSlot(0, k, 0)
		b.PrependUOffsetTSlot(1, v, 0)
		kv[i] = b.EndObject()
	}
	kvec := tableVector(b, kv)
	b.StartObject(4)
	b.PrependInt16Slot(0, 0, 0) // little-endian
	b.PrependUOffsetTSlot(1, fvec, 0)
	b.PrependUOffsetTSlot(2, kvec, 0)
	return b.EndObject()
}

func buildField(b *flatbuffers.Builder, f *fbField) flatbuffers.UOffsetT {
	name := b.CreateString(f.Name)
	var children []flatbuffers.UOffsetT
	if f.Elem != nil {
		children = append(children, buildField(b, f.Elem))
	}
	cvec := tableVector(b, children)
	var typ flatbuffers.UOffsetT
	switch f.Type {
	case fbTypeInt:
		b.StartObject(2)
		b.PrependInt32Slot(0, int32(f.Bits), 0)
		b.PrependBoolSlot(1, f.Signed, false)
		typ = b.EndObject()
	case fbTypeFloat:
		b.StartObject(1)
		b.PrependInt16Slot(0, fbPrecisionDouble, 0)
		typ = b.EndObject()
	default: // Utf8 and List are empty tables
		b.StartObject(0)
		typ = b.EndObject()
	}
	b.StartObject(7)
	b.PrependUOffsetTSlot(0, name, 0)
	b.PrependBoolSlot(1, f.Nullable, false)
	b.PrependByteSlot(2, byte(f.Type), 0)
	b.PrependUOffsetTSlot(3, typ, 0)
	b.PrependUOffsetTSlot(5, cvec, 0)
	return b.EndObject()
}

func tableVector(b *flatbuffers.Builder, offs []flatbuffers.UOffsetT) flatbuffers.UOffsetT {
	b.StartVector(4, len(offs), 4)
	for i := len(offs) - 1; i >= 0; i-- {
		b.PrependUOffsetT(offs[i])
	}
	return b.EndVector(len(offs))
}

// buildMessage wraps a header table in an Arrow Message and finishes b.
func buildMessage(b *flatbuffers.Builder, headerType byte, header flatbuffers.UOffsetT, bodyLen int64) []byte {
	b.StartObject(5)
	b.PrependInt16Slot(0, fbMetadataV5, 0)
	b.PrependByteSlot(1, headerType, 0)
	b.PrependUOffsetTSlot(2, header, 0)
	b.PrependInt64Slot(3, bodyLen, 0)
	b.Finish(b.EndObject())
	return b.FinishedBytes()
}

// fbNode is an Arrow FieldNode: a column's (or list child's) length and
// null count.
type fbNode struct{ length, nulls int64 }

// fbBuffer is an Arrow Buffer: offset and length within the body.
type fbBuffer struct{ offset, length int64 }

// arrowFileWriter writes one Arrow IPC file, with ZSTD-compressed or
// uncompressed buffers, to an io.Writer, tracking its position for the
// footer.
type arrowFileWriter struct {
	out    func([]byte) error
	pos    int64
	fb     *flatbuffers.Builder
	schema func(b *flatbuffers.Builder) flatbuffers.UOffsetT
	blocks []fbBlock
	// enc compresses every buffer; nil writes them uncompressed.
	enc *zstd.Encoder
	// rawIfLarger stores a buffer that zstd does not make smaller as it
	// is, behind the length prefix -1 (as Arrow C++ and Go do when asked
	// for a minimum saving). Document shards set it; token shards, whose
	// bytes tests pin, do not.
	rawIfLarger bool
	// Per batch, reused: the compressed body (or, uncompressed, the
	// buffers themselves and the body's padded length) and its layout.
	body    []byte
	raw     [][]byte
	rawLen  int64
	nodes   []fbNode
	buffers []fbBuffer
	pad     [8]byte
}

// tokenZstd compresses token shards' buffers: one encoder for the process,
// each EncodeAll independent of the others (so the bytes do not depend on
// which of its GOMAXPROCS internal encoders runs it). SpeedFastest (zstd
// level 1) against Arrow Go's SpeedDefault (level 3) made GPT-2 ids of
// wikitext 3% larger (1.61x against 1.66x) and their compression 2.4x
// faster (190 against 79 MB/s). The 1 MiB window (the default is 8 MiB)
// cost under 1% of the ratio and keeps each internal encoder's history at
// 2 MiB instead of 16 MiB, which a new encoder allocated and zeroed per
// token writer.
var tokenZstd = sync.OnceValue(func() *zstd.Encoder {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(1<<20),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	if err != nil {
		panic(fmt.Sprintf("zstd encoder: %v", err)) // only on invalid options
	}
	return enc
})

func (w *arrowFileWriter) write(p []byte) error {
	if err := w.out(p); err != nil {
		return err
	}
	w.pos += int64(len(p))
	return nil
}

// writeMessage writes an encapsulated message: the continuation marker,
// the metadata length (padded so the body starts 8-aligned) and the
// flatbuffer, and returns the bytes written.
func (w *arrowFileWriter) writeMessage(meta []byte) (int32, error) {
	padded := (len(meta) + 8 + 7) &^ 7
	var hdr [8]byte
	binary.LittleEndian.PutUint32(hdr[:4], 0xFFFFFFFF)
	binary.LittleEndian.PutUint32(hdr[4:], uint32(padded-8))
	if err := w.write(hdr[:]); err != nil {
		return 0, err
	}
	if err := w.write(meta); err != nil {
		return 0, err
	}
	if err := w.write(w.pad[:padded-8-len(meta)]); err != nil {
		return 0, err
	}
	return int32(padded), nil
}

// start writes the magic and the schema message.
func (w *arrowFileWriter) start() error {
	if err := w.write(append(append([]byte(nil), arrowMagic...), 0, 0)); err != nil {
		return err
	}
	w.fb.Reset()
	s := w.schema(w.fb)
	_, err := w.writeMessage(buildMessage(w.fb, fbHeaderSchema, s, 0))
	return err
}

// resetBatch starts a new record batch.
func (w *arrowFileWriter) resetBatch() {
	w.body, w.nodes, w.buffers = w.body[:0], w.nodes[:0], w.buffers[:0]
	clear(w.raw)
	w.raw, w.rawLen = w.raw[:0], 0
}

// node records a column's field node.
func (w *arrowFileWriter) node(length int64) { w.nodes = append(w.nodes, fbNode{length: length}) }

// nodeNulls records a column's field node with its null count.
func (w *arrowFileWriter) nodeNulls(length, nulls int64) {
	w.nodes = append(w.nodes, fbNode{length: length, nulls: nulls})
}

// buffer adds one buffer to the body, compressed when the writer has an
// encoder (an empty buffer, such as the validity bitmap of a column without
// nulls, takes no bytes). An uncompressed buffer is not copied: data must
// stay unchanged until flushBatch has written it.
func (w *arrowFileWriter) buffer(data []byte) { w.bufferFrames(data, nil) }

// bufferFrames is buffer with the data compressed as several zstd frames,
// one after the other behind the one length prefix: frame k holds
// data[ends[k-1]:ends[k]] (the last end is len(data)). With no or one end
// it is one frame, as buffer writes it. Uncompressed, ends is ignored.
func (w *arrowFileWriter) bufferFrames(data []byte, ends []int64) {
	if w.enc == nil {
		off := w.rawLen
		w.raw = append(w.raw, data)
		w.rawLen += (int64(len(data)) + 7) &^ 7
		w.buffers = append(w.buffers, fbBuffer{offset: off, length: int64(len(data))})
		return
	}
	off := int64(len(w.body))
	if len(data) == 0 {
		w.buffers = append(w.buffers, fbBuffer{offset: off})
		return
	}
	// Room for the worst case up front: EncodeAll would otherwise grow
	// the body by appending, copying it several times per batch.
	need := len(w.body) + 8 + w.enc.MaxEncodedSize(len(data)) + 8
	if len(ends) > 1 {
		// Each frame has its own header and last block.
		need += 32 * len(ends)
	}
	if need > cap(w.body) {
		nb := make([]byte, len(w.body), need+need/4)
		copy(nb, w.body)
		w.body = nb
	}
	w.body = binary.LittleEndian.AppendUint64(w.body, uint64(len(data)))
	if len(ends) > 1 {
		lo := int64(0)
		for _, hi := range ends {
			w.body = w.enc.EncodeAll(data[lo:hi], w.body)
			lo = hi
		}
	} else {
		w.body = w.enc.EncodeAll(data, w.body)
	}
	w.endCompressed(off, data)
}

// endCompressed finishes the compressed buffer that starts at off in the
// body: stored as it is (prefix -1) where compression did not make it
// smaller and the writer says so, padded to 8 bytes, and listed.
func (w *arrowFileWriter) endCompressed(off int64, data []byte) {
	if w.rawIfLarger && int64(len(w.body))-off-8 >= int64(len(data)) {
		// Compression did not help: the buffer as it is, prefix -1.
		w.body = binary.LittleEndian.AppendUint64(w.body[:off], ^uint64(0))
		w.body = append(w.body, data...)
	}
	n := int64(len(w.body)) - off
	for len(w.body)%8 != 0 {
		w.body = append(w.body, 0)
	}
	w.buffers = append(w.buffers, fbBuffer{offset: off, length: n})
}

// flushBatch writes the record batch of rows built with node and buffer.
func (w *arrowFileWriter) flushBatch(rows int64) error {
	b := w.fb
	b.Reset()
	var comp flatbuffers.UOffsetT
	if w.enc != nil {
		b.StartObject(2)
		b.PrependInt8Slot(0, fbCodecZstd, 0)
		b.PrependInt8Slot(1, 0, 0) // per buffer
		comp = b.EndObject()
	}
	b.StartVector(16, len(w.buffers), 8)
	for i := len(w.buffers) - 1; i >= 0; i-- {
		b.Prep(8, 16)
		b.PrependInt64(w.buffers[i].length)
		b.PrependInt64(w.buffers[i].offset)
	}
	bufs := b.EndVector(len(w.buffers))
	b.StartVector(16, len(w.nodes), 8)
	for i := len(w.nodes) - 1; i >= 0; i-- {
		b.Prep(8, 16)
		b.PrependInt64(w.nodes[i].nulls)
		b.PrependInt64(w.nodes[i].length)
	}
	nodes := b.EndVector(len(w.nodes))
	b.StartObject(5)
	b.PrependInt64Slot(0, rows, 0)
	b.PrependUOffsetTSlot(1, nodes, 0)
	b.PrependUOffsetTSlot(2, bufs, 0)
	if comp != 0 {
		b.PrependUOffsetTSlot(3, comp, 0)
	}
	rb := b.EndObject()
	bodyLen := int64(len(w.body))
	if w.enc == nil {
		bodyLen = w.rawLen
	}
	meta := buildMessage(b, fbHeaderRecordBatch, rb, bodyLen)
	at := w.pos
	n, err := w.writeMessage(meta)
	if err != nil {
		return err
	}
	if w.enc == nil {
		// Each buffer straight from the caller's slice, padded to 8 bytes.
		for _, p := range w.raw {
			if err := w.write(p); err != nil {
				return err
			}
			if err := w.write(w.pad[:(8-len(p)%8)%8]); err != nil {
				return err
			}
		}
	} else if err := w.write(w.body); err != nil {
		return err
	}
	w.blocks = append(w.blocks, fbBlock{offset: at, metaLen: n, bodyLen: bodyLen})
	return nil
}

// finish writes the end-of-stream marker, the footer and the closing magic.
func (w *arrowFileWriter) finish() error {
	var eos [8]byte
	binary.LittleEndian.PutUint32(eos[:4], 0xFFFFFFFF)
	if err := w.write(eos[:]); err != nil {
		return err
	}
	b := w.fb
	b.Reset()
	s := w.schema(b)
	b.StartVector(24, len(w.blocks), 8)
	for i := len(w.blocks) - 1; i >= 0; i-- {
		blk := w.blocks[i]
		b.Prep(8, 24)
		b.PrependInt64(blk.bodyLen)
		b.Pad(4)
		b.PrependInt32(blk.metaLen)
		b.PrependInt64(blk.offset)
	}
	batches := b.EndVector(len(w.blocks))
	b.StartVector(24, 0, 8)
	dicts := b.EndVector(0)
	b.StartObject(5)
	b.PrependInt16Slot(0, fbMetadataV5, 0)
	b.PrependUOffsetTSlot(1, s, 0)
	b.PrependUOffsetTSlot(2, dicts, 0)
	b.PrependUOffsetTSlot(3, batches, 0)
	b.Finish(b.EndObject())
	footer := b.FinishedBytes()
	if err := w.write(footer); err != nil {
		return err
	}
	var tail [4]byte
	binary.LittleEndian.PutUint32(tail[:], uint32(len(footer)))
	if err := w.write(tail[:]); err != nil {
		return err
	}
	return w.write(arrowMagic)
}
