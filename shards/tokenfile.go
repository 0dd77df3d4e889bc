package shards

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"sync"

	flatbuffers "github.com/google/flatbuffers/go"
	"github.com/klauspost/compress/zstd"
)

// tokenFormat holds the columns of a token shard's record batch in
// progress as little-endian Arrow buffers and writes them with
// arrowFileWriter (see arrowwrite.go for why by hand).
type tokenFormat struct {
	fields     []fbField
	keys, vals []string
	wide       bool
	zstd       bool // compress the buffers (TokenCompressionZstd)
	enc        *zstd.Encoder
	fb         *flatbuffers.Builder
	// Arrow buffers of the batch: offsets (int32, starting at 0) and data.
	idOffs, idData   []byte
	srcOffs, srcData []byte
	listOffs, toks   []byte
	nTok             []byte
	rows             int
	// body is the last file's batch scratch, handed to the next file.
	body []byte
}

// newTokenFormat sizes the token buffer for batches of batchBytes.
func newTokenFormat(tok TokenizerInfo, batchBytes int64, compress bool) *tokenFormat {
	sc := TokenSchema(tok)
	md := sc.Metadata()
	f := &tokenFormat{
		wide: tok.VocabSize > 1<<16,
		zstd: compress,
		keys: md.Keys(), vals: md.Values(),
		fb: flatbuffers.NewBuilder(4096),
	}
	elem := &fbField{Name: "item", Type: fbTypeInt, Bits: 16}
	if f.wide {
		elem.Bits = 32
	}
	f.fields = []fbField{
		{Name: ColID, Type: fbTypeUtf8},
		{Name: ColSource, Type: fbTypeUtf8},
		{Name: ColTokens, Type: fbTypeList, Elem: elem},
		{Name: ColNTokens, Type: fbTypeInt, Bits: 64, Signed: true},
	}
	// A batch is flushed once it holds batchBytes, so one document past
	// it: room for that up front saves growing the buffer copy by copy.
	if batchBytes > 0 && batchBytes <= 64<<20 {
		want := int(batchBytes + batchBytes/4)
		if b, ok := tokBatchBufs.Get().(*[]byte); ok && cap(*b) >= want {
			f.toks = (*b)[:0]
		} else {
			f.toks = make([]byte, 0, want)
		}
	}
	f.reset()
	return f
}

func (f *tokenFormat) reset() {
	zero := []byte{0, 0, 0, 0}
	f.idOffs = append(f.idOffs[:0], zero...)
	f.srcOffs = append(f.srcOffs[:0], zero...)
	f.listOffs = append(f.listOffs[:0], zero...)
	f.idData, f.srcData, f.toks, f.nTok = f.idData[:0], f.srcData[:0], f.toks[:0], f.nTok[:0]
	f.rows = 0
}

// appendRow adds one document's row, whose ids must all be below vocab.
// Offsets are int32: a batch is flushed at a few MiB, so only a single row
// of more than 2 GiB of id or 2^31 tokens could overflow them, and that is
// refused. The ids are checked in the same pass that converts them, and a
// row with a bad one is not added.
func (f *tokenFormat) appendRow(id, source string, toks []uint32, vocab uint64) error {
	width := 2
	if f.wide {
		width = 4
	}
	if int64(len(f.idData))+int64(len(id)) > 1<<31-1 || int64(len(f.srcData))+int64(len(source)) > 1<<31-1 ||
		int64(len(f.toks)/width)+int64(len(toks)) > 1<<31-1 {
		return fmt.Errorf("document %s: %d tokens do not fit an Arrow record batch", id, len(toks))
	}
	n := len(f.toks)
	f.toks = grow(f.toks, width*len(toks))
	out := f.toks[n:]
	var hi uint32
	if f.wide {
		for i, t := range toks {
			binary.LittleEndian.PutUint32(out[4*i:], t)
			hi = max(hi, t)
		}
	} else {
		out = out[:2*len(toks)]
		for i, t := range toks {
			out[2*i] = byte(t)
			out[2*i+1] = byte(t >> 8)
			hi = max(hi, t)
		}
	}
	if uint64(hi) >= vocab {
		f.toks = f.toks[:n]
		for i, t := range toks {
			if uint64(t) >= vocab {
				return fmt.Errorf("document %s: token %d at position %d is outside the vocabulary of %d", id, t, i, vocab)
			}
		}
	}
	f.idData = append(f.idData, id...)
	f.idOffs = binary.LittleEndian.AppendUint32(f.idOffs, uint32(len(f.idData)))
	f.srcData = append(f.srcData, source...)
	f.srcOffs = binary.LittleEndian.AppendUint32(f.srcOffs, uint32(len(f.srcData)))
	f.listOffs = binary.LittleEndian.AppendUint32(f.listOffs, uint32(len(f.toks)/width))
	f.nTok = binary.LittleEndian.AppendUint64(f.nTok, uint64(len(toks)))
	f.rows++
	return nil
}

// grow extends b by n bytes, reusing its capacity where it can.
func grow(b []byte, n int) []byte {
	if len(b)+n <= cap(b) {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, 2*cap(b)+n)
	copy(nb, b)
	return nb
}

// tokenFile is one token shard being written, atomically.
type tokenFile struct {
	name string
	af   *AtomicFile
	bw   *bufio.Writer
	w    arrowFileWriter
	rows int64
}

func (f *tokenFormat) create(path string) (shardFile, error) {
	af, err := CreateAtomic(path)
	if err != nil {
		return nil, err
	}
	if f.enc == nil && f.zstd {
		f.enc = tokenZstd()
	}
	tf := &tokenFile{name: path, af: af, bw: bufio.NewWriterSize(af, 1<<16)}
	tf.w = arrowFileWriter{
		out: func(p []byte) error { _, err := tf.bw.Write(p); return err },
		fb:  f.fb,
		schema: func(b *flatbuffers.Builder) flatbuffers.UOffsetT {
			return buildSchema(b, f.fields, f.keys, f.vals)
		},
		enc:  f.enc,
		body: f.body,
	}
	if err := tf.w.start(); err != nil {
		af.Abort()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return tf, nil
}

func (f *tokenFormat) flush(sf shardFile) error {
	tf := sf.(*tokenFile)
	w := &tf.w
	rows := int64(f.rows)
	w.resetBatch()
	for _, col := range [][2][]byte{{f.idOffs, f.idData}, {f.srcOffs, f.srcData}} {
		w.node(rows)
		w.buffer(nil) // no nulls: no validity bitmap
		w.buffer(col[0])
		w.buffer(col[1])
	}
	w.node(rows)
	w.buffer(nil)
	w.buffer(f.listOffs)
	width := 2
	if f.wide {
		width = 4
	}
	w.node(int64(len(f.toks) / width))
	w.buffer(nil)
	w.buffer(f.toks)
	w.node(rows)
	w.buffer(nil)
	w.buffer(f.nTok)
	// Uncompressed buffers are written from f's own: reset after.
	err := w.flushBatch(rows)
	w.resetBatch()
	f.reset()
	if err != nil {
		return fmt.Errorf("write batch to %s: %w", tf.name, err)
	}
	f.body = w.body
	tf.rows += rows
	return nil
}

func (f *tokenFormat) release() {
	f.enc = nil
	if cap(f.toks) <= 80<<20 {
		b := f.toks[:0]
		tokBatchBufs.Put(&b)
	}
	f.toks = nil
}

// tokBatchBufs recycles the token buffer of a closed writer (5 MiB for
// the default batch size) for the next one: a process that runs several
// tokenize tasks, or BenchmarkTokenize, would otherwise allocate and zero
// it per run, half of what the stage allocated and a garbage collection
// every few runs.
var tokBatchBufs sync.Pool

// Commit writes the footer and publishes the file.
func (tf *tokenFile) Commit() (ShardInfo, error) {
	if err := tf.w.finish(); err != nil {
		tf.af.Abort()
		return ShardInfo{}, fmt.Errorf("finish %s: %w", tf.name, err)
	}
	if err := tf.bw.Flush(); err != nil {
		tf.af.Abort()
		return ShardInfo{}, fmt.Errorf("finish %s: %w", tf.name, err)
	}
	info := ShardInfo{Name: baseName(tf.name), Rows: tf.rows, Bytes: tf.af.Size(), SHA256: tf.af.SHA256()}
	if err := tf.af.Commit(); err != nil {
		return ShardInfo{}, err
	}
	return info, nil
}

// Abort discards the file.
func (tf *tokenFile) Abort() { tf.af.Abort() }
