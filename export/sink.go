package export

import (
	"bufio"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"

	"github.com/smelt-dev/smelt/shards"
)

// CheckpointName is the file in an export's output directory that records
// how far it got. It is removed when the export finishes (a takedown that
// finds one knows the export was cut short).
const CheckpointName = "_export_checkpoint.json"

// SidecarName is the provenance file an export writes last: a directory
// with it holds a finished export.
const SidecarName = "export.json"

// checkpoint is an export's resumable state, saved after every input shard
// once every output file has been flushed and fsynced up to the lengths it
// records. A resumed export truncates its partial files to those lengths,
// skips the Consumed shards and goes on: since every byte written depends
// only on the input, it ends with the same files as an uninterrupted run.
type checkpoint struct {
	Fingerprint string `json:"fingerprint"`
	// Consumed counts input shards fully exported.
	Consumed int `json:"consumed"`
	// Partials are the appended files' synced state, by final name.
	Partials map[string]partState `json:"partials,omitempty"`
	// Files are the finished outputs so far, in order.
	Files []FileInfo `json:"files"`
	// Mix is the materialised mix's progress (megatron --mix-tokens).
	Mix *mixState `json:"mix,omitempty"`
}

// partState is how much of a partial file is synced, and what it holds.
type partState struct {
	Bytes  int64 `json:"bytes"`
	Docs   int64 `json:"docs"`
	Tokens int64 `json:"tokens"`
	// SHA256 is the running digest's state (crypto/sha256's binary
	// form), so a resumed file's checksum needs no second read.
	SHA256 []byte `json:"sha256_state,omitempty"`
}

type mixState struct {
	Loader json.RawMessage `json:"loader"`
	Seqs   int64           `json:"seqs"`
}

func loadCheckpoint(dir string) (*checkpoint, error) {
	path := filepath.Join(dir, CheckpointName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var cp checkpoint
	if err := json.Unmarshal(data, &cp); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &cp, nil
}

func saveCheckpoint(dir string, cp *checkpoint) error {
	data, err := json.Marshal(cp)
	if err != nil {
		return fmt.Errorf("encode export checkpoint: %w", err)
	}
	return shards.WriteFileAtomic(filepath.Join(dir, CheckpointName), data)
}

// partial is an output file written by appending, under a fixed temporary
// name (".NAME.partial") so that a resumed export finds it again. Commit
// fsyncs it and renames it to NAME.
type partial struct {
	dir, name string
	f         *os.File
	w         *bufio.Writer
	n         int64
	// Docs and Tokens count what the file holds.
	docs, tokens int64
	// h hashes what is written after the first skip bytes (a header
	// written last); nil once other bytes were overwritten.
	h    hash.Hash
	skip int64
}

func partialPath(dir, name string) string { return filepath.Join(dir, "."+name+".partial") }

// openPartial opens (or creates) the partial file of name, cut back to at
// bytes: what a checkpoint recorded (0 for a fresh file). A file that an
// interrupted finish already renamed into place is taken back.
func openPartial(dir, name string, st partState) (*partial, error) {
	at := st.Bytes
	path := partialPath(dir, name)
	if at > 0 {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if err := os.Rename(filepath.Join(dir, name), path); err != nil {
				return nil, fmt.Errorf("resume %s: the checkpoint lists %d bytes, but the file is gone: %w", name, at, err)
			}
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("export: %w", err)
	}
	if fi.Size() < at {
		f.Close()
		return nil, fmt.Errorf("resume %s: %d bytes on disk, the checkpoint says %d were synced", path, fi.Size(), at)
	}
	if err := f.Truncate(at); err != nil {
		f.Close()
		return nil, fmt.Errorf("export: truncate %s: %w", path, err)
	}
	if _, err := f.Seek(at, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("export: seek %s: %w", path, err)
	}
	h := sha256.New()
	if at > 0 {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st.SHA256); err != nil {
			h = nil // hashed again from the file when it is published
		}
	}
	return &partial{dir: dir, name: name, f: f, w: bufio.NewWriterSize(f, 1<<20), n: at, docs: st.Docs, tokens: st.Tokens, h: h}, nil
}

func (p *partial) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	if p.h != nil {
		if from := p.skip - p.n; from < int64(n) {
			p.h.Write(b[max(from, 0):n])
		}
	}
	p.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("export: write %s: %w", p.name, err)
	}
	return n, nil
}

// sync makes everything written so far durable.
func (p *partial) sync() error {
	if err := p.w.Flush(); err != nil {
		return fmt.Errorf("export: write %s: %w", p.name, err)
	}
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("export: sync %s: %w", p.name, err)
	}
	return nil
}

// writeAt overwrites bytes already written (a header), after a flush.
func (p *partial) writeAt(b []byte, off int64) error {
	if err := p.w.Flush(); err != nil {
		return fmt.Errorf("export: write %s: %w", p.name, err)
	}
	if _, err := p.f.WriteAt(b, off); err != nil {
		return fmt.Errorf("export: write %s: %w", p.name, err)
	}
	if off+int64(len(b)) > p.skip {
		p.h = nil
	}
	return nil
}

// commit syncs the file and renames it into place.
func (p *partial) commit() error {
	if err := p.sync(); err != nil {
		p.f.Close()
		return err
	}
	if err := p.f.Close(); err != nil {
		return fmt.Errorf("export: close %s: %w", p.name, err)
	}
	if err := os.Rename(partialPath(p.dir, p.name), filepath.Join(p.dir, p.name)); err != nil {
		return fmt.Errorf("export: publish %s: %w", p.name, err)
	}
	return nil
}

// state is what a checkpoint records of the file; call after sync.
func (p *partial) state() partState {
	st := partState{Bytes: p.n, Docs: p.docs, Tokens: p.tokens}
	if p.h != nil {
		st.SHA256, _ = p.h.(encoding.BinaryMarshaler).MarshalBinary()
	}
	return st
}

// sum is the hex sha256 of the file after its first skip bytes, or ""
// when the file must be read again.
func (p *partial) sum() string {
	if p.h == nil {
		return ""
	}
	return hex.EncodeToString(p.h.Sum(nil))
}

// close releases the file without publishing it (an error path).
func (p *partial) close() { p.f.Close() }

// removePartials deletes partial files that are not in keep (a run that
// was killed before its first checkpoint, or one with other outputs).
func removePartials(dir string, keep map[string]partState) error {
	matches, err := filepath.Glob(filepath.Join(dir, ".*.partial"))
	if err != nil {
		return err
	}
	for _, m := range matches {
		base := filepath.Base(m)
		name := base[1 : len(base)-len(".partial")]
		if _, ok := keep[name]; ok {
			continue
		}
		if err := os.Remove(m); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("export: remove unfinished %s: %w", m, err)
		}
	}
	return shards.RemoveTemps(dir)
}
