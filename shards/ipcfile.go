package shards

import (
	"bufio"
	"fmt"
	"path/filepath"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/klauspost/compress/zstd"
)

// ShardInfo describes one published shard file, as listed in a manifest.
type ShardInfo struct {
	// Name is the file name, relative to the shard directory.
	Name string `json:"name"`
	// Rows is the number of rows (documents).
	Rows int64 `json:"rows"`
	// Bytes is the file's size on disk.
	Bytes int64 `json:"bytes"`
	// DataBytes is the uncompressed size of the rows' fields.
	DataBytes int64 `json:"data_bytes"`
	// Tokens is the number of tokens in a token shard (zero for documents).
	Tokens int64 `json:"tokens,omitempty"`
	// SHA256 is the hex digest of the file.
	SHA256 string `json:"sha256"`
}

// IPCFile writes one Arrow IPC file with ZSTD buffer compression, atomically:
// the file appears under its name only on Commit. A schema of utf8 and
// float64 columns (document shards) is written by hand (docipc.go: one
// reused zstd encoder instead of Arrow Go's per-buffer streaming one);
// any other goes through Arrow Go's ipc.FileWriter.
type IPCFile struct {
	name string
	af   *AtomicFile
	w    *ipc.FileWriter
	h    *handIPC
	rows int64
}

// CreateIPCFile starts an Arrow IPC file at path with the given schema.
func CreateIPCFile(path string, schema *arrow.Schema) (*IPCFile, error) {
	if fields, ok := handFields(schema); ok {
		return createHandIPCFile(path, schema, fields, docZstd())
	}
	return createArrowGoIPCFile(path, schema)
}

// createHandIPCFile starts a file written by hand, compressed with enc.
func createHandIPCFile(path string, schema *arrow.Schema, fields []fbField, enc *zstd.Encoder) (*IPCFile, error) {
	af, err := CreateAtomic(path)
	if err != nil {
		return nil, err
	}
	h, err := newHandIPC(bufio.NewWriterSize(af, 1<<16), schema, fields, enc)
	if err != nil {
		h.release()
		af.Abort()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &IPCFile{name: path, af: af, h: h}, nil
}

// createArrowGoIPCFile starts a file written by Arrow Go's ipc.FileWriter
// (schemas handIPC does not cover; tests and benchmarks compare with it).
func createArrowGoIPCFile(path string, schema *arrow.Schema) (*IPCFile, error) {
	af, err := CreateAtomic(path)
	if err != nil {
		return nil, err
	}
	w, err := ipc.NewFileWriter(af,
		ipc.WithSchema(schema),
		ipc.WithZstd(),
		ipc.WithAllocator(memory.DefaultAllocator),
	)
	if err != nil {
		af.Abort()
		return nil, fmt.Errorf("arrow writer for %s: %w", path, err)
	}
	return &IPCFile{name: path, af: af, w: w}, nil
}

// Write appends one record batch.
func (f *IPCFile) Write(rec arrow.Record) error {
	var err error
	if f.h != nil {
		err = f.h.write(rec)
	} else {
		err = f.w.Write(rec)
	}
	if err != nil {
		return fmt.Errorf("write batch to %s: %w", f.name, err)
	}
	f.rows += rec.NumRows()
	return nil
}

// Commit writes the footer and publishes the file. The returned ShardInfo
// has Rows, Bytes and SHA256 set; Name is the path's base name.
func (f *IPCFile) Commit() (ShardInfo, error) {
	var err error
	if f.h != nil {
		err = f.h.finish()
		f.h.release()
	} else {
		err = f.w.Close()
	}
	if err != nil {
		f.af.Abort()
		return ShardInfo{}, fmt.Errorf("finish %s: %w", f.name, err)
	}
	info := ShardInfo{Name: baseName(f.name), Rows: f.rows, Bytes: f.af.Size(), SHA256: f.af.SHA256()}
	if err := f.af.Commit(); err != nil {
		return ShardInfo{}, err
	}
	return info, nil
}

// Abort discards the file.
func (f *IPCFile) Abort() {
	if f.h != nil {
		f.h.release()
	}
	f.af.Abort()
}

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}

// shardSet is what DocWriter and TokenWriter share: it batches the rows
// its owner appends to b into record batches, names shard files, cuts a
// shard when it reaches the target size and publishes it atomically. Shard
// boundaries depend only on what was written, never on timing.
type shardSet struct {
	dir        string
	prefix     string
	target     int64 // cut a shard at this many data bytes
	batchRows  int   // flush a record batch at this many rows...
	batchBytes int64 // ...or this many data bytes
	format     batchFormat
	onShard    func(ShardInfo) error

	file      shardFile
	index     int
	rows      int   // rows in the current batch
	rowsData  int64 // data bytes in the current batch
	shardRows int64
	shardData int64
	shardToks int64
	shards    []ShardInfo
}

func newShardSet(dir, prefix string, format batchFormat, first int, target int64, batchRows int, batchBytes int64, onShard func(ShardInfo) error) shardSet {
	return shardSet{dir: dir, prefix: prefix, target: target, batchRows: batchRows, batchBytes: batchBytes,
		format: format, onShard: onShard, index: first}
}

// shardFile is a shard file being written.
type shardFile interface {
	Commit() (ShardInfo, error)
	Abort()
}

// batchFormat is how a shardSet's rows become files: it creates a shard
// file and writes the rows appended since the last flush to it as one
// record batch.
type batchFormat interface {
	create(path string) (shardFile, error)
	flush(f shardFile) error
	release()
}

// arrowFormat writes record batches built with an Arrow RecordBuilder
// through IPCFile (document shards: written by hand, see docipc.go).
type arrowFormat struct {
	schema *arrow.Schema
	b      *array.RecordBuilder
	// open, when set, replaces CreateIPCFile (benchmarks compare writers).
	open func(path string, schema *arrow.Schema) (*IPCFile, error)
}

func newArrowFormat(schema *arrow.Schema) *arrowFormat {
	return &arrowFormat{schema: schema, b: array.NewRecordBuilder(memory.DefaultAllocator, schema)}
}

func (a *arrowFormat) create(path string) (shardFile, error) {
	if a.open != nil {
		return a.open(path, a.schema)
	}
	return CreateIPCFile(path, a.schema)
}

func (a *arrowFormat) flush(f shardFile) error {
	rec := a.b.NewRecord()
	defer rec.Release()
	return f.(*IPCFile).Write(rec)
}

func (a *arrowFormat) release() { a.b.Release() }

// added records that one row of data bytes (and tokens) was appended to b,
// and flushes the batch when it is big enough.
func (s *shardSet) added(data, tokens int64) error {
	s.rows++
	s.rowsData += data
	s.shardRows++
	s.shardData += data
	s.shardToks += tokens
	if s.rows >= s.batchRows || s.rowsData >= s.batchBytes {
		return s.flushBatch()
	}
	return nil
}

// Full reports whether the current shard has reached the target size.
func (s *shardSet) Full() bool { return s.shardData >= s.target }

// Empty reports whether the current shard has no rows yet.
func (s *shardSet) Empty() bool { return s.shardRows == 0 }

func (s *shardSet) flushBatch() error {
	if s.rows == 0 {
		return nil
	}
	s.rows, s.rowsData = 0, 0
	if s.file == nil {
		f, err := s.format.create(filepath.Join(s.dir, ShardName(s.prefix, s.index)))
		if err != nil {
			return err
		}
		s.file = f
	}
	return s.format.flush(s.file)
}

// Cut finishes the current shard, if it has any rows, and publishes it.
func (s *shardSet) Cut() error {
	if s.shardRows == 0 {
		return nil
	}
	if err := s.flushBatch(); err != nil {
		return err
	}
	info, err := s.file.Commit()
	s.file = nil
	if err != nil {
		return err
	}
	info.DataBytes, info.Tokens = s.shardData, s.shardToks
	s.shards = append(s.shards, info)
	s.index++
	s.shardData, s.shardRows, s.shardToks = 0, 0, 0
	if s.onShard != nil {
		return s.onShard(info)
	}
	return nil
}

// Close publishes the last shard. Rows written after Close are an error.
func (s *shardSet) Close() error {
	err := s.Cut()
	s.format.release()
	return err
}

// Abort discards the shard in progress (published shards stay).
func (s *shardSet) Abort() {
	if s.file != nil {
		s.file.Abort()
		s.file = nil
	}
}

// Shards lists the shards published so far.
func (s *shardSet) Shards() []ShardInfo { return s.shards }

// NextIndex is the index the next shard will get.
func (s *shardSet) NextIndex() int { return s.index }
