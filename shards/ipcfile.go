package shards

import (
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
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
// the file appears under its name only on Commit.
type IPCFile struct {
	name string
	af   *AtomicFile
	w    *ipc.FileWriter
	rows int64
}

// CreateIPCFile starts an Arrow IPC file at path with the given schema.
func CreateIPCFile(path string, schema *arrow.Schema) (*IPCFile, error) {
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
	if err := f.w.Write(rec); err != nil {
		return fmt.Errorf("write batch to %s: %w", f.name, err)
	}
	f.rows += rec.NumRows()
	return nil
}

// Commit writes the footer and publishes the file. The returned ShardInfo
// has Rows, Bytes and SHA256 set; Name is the path's base name.
func (f *IPCFile) Commit() (ShardInfo, error) {
	if err := f.w.Close(); err != nil {
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
func (f *IPCFile) Abort() { f.af.Abort() }

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}
