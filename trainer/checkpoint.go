package trainer

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
)

// CheckpointFile is the name of the latest checkpoint in a run directory.
const CheckpointFile = "checkpoint.bin"

const (
	ckptMagic   = "SMELTCKP"
	ckptVersion = 1
)

// Checkpoint is everything a run needs to continue exactly where it was:
// the model, the optimizer, the step, the loader's position and the RNG.
type Checkpoint struct {
	Config Config `json:"config"`
	// Step is the number of optimizer steps completed.
	Step int `json:"step"`
	// Tokenizer names the tokenizer of the training data; EOT is its
	// end-of-text id.
	Tokenizer string `json:"tokenizer"`
	EOT       uint32 `json:"eot"`
	// TokenizerHash is the tokenizer's ranks hash; TokenizerFile and
	// TokenizerData its file name and bytes (see DataInfo), so that the
	// checkpoint can encode and decode text anywhere.
	TokenizerHash string `json:"tokenizer_hash,omitempty"`
	TokenizerFile string `json:"tokenizer_file,omitempty"`
	TokenizerData []byte `json:"tokenizer_data,omitempty"`
	// LoaderState is the training Batcher's State after Step steps.
	LoaderState []byte `json:"loader_state"`
	// RNG is the run's random generator state (math/rand/v2 PCG binary).
	RNG []byte `json:"rng"`
	// Options are the training options the run was started with.
	Options Options `json:"options"`
	// AdamT is the optimizer's step count; M and V its moments (absent in
	// a weights-only checkpoint).
	AdamT int `json:"adam_t"`

	Params []float32 `json:"-"`
	M, V   []float32 `json:"-"`
}

type ckptHeader struct {
	Checkpoint
	NumParams    int  `json:"num_params"`
	HasOptimizer bool `json:"has_optimizer"`
}

// ResolveCheckpoint accepts a checkpoint file or a run directory holding
// CheckpointFile.
func ResolveCheckpoint(path string) string {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return filepath.Join(path, CheckpointFile)
	}
	return path
}

// SaveCheckpoint writes ck to path atomically: a temporary file in the same
// directory, fsync, rename, fsync of the directory. A failure leaves any
// previous checkpoint at path untouched. Non-finite parameters are refused.
func SaveCheckpoint(path string, ck *Checkpoint) error {
	if len(ck.Params) != ck.Config.NumParams() {
		return fmt.Errorf("trainer: checkpoint %s: %d params for a config of %d", path, len(ck.Params), ck.Config.NumParams())
	}
	hasOpt := ck.M != nil
	if hasOpt && (len(ck.M) != len(ck.Params) || len(ck.V) != len(ck.Params)) {
		return fmt.Errorf("trainer: checkpoint %s: optimizer moments do not match the params", path)
	}
	for i, v := range ck.Params {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("trainer: refusing to write checkpoint %s: parameter %d is %v", path, i, v)
		}
	}
	hdr, err := json.Marshal(ckptHeader{Checkpoint: *ck, NumParams: len(ck.Params), HasOptimizer: hasOpt})
	if err != nil {
		return fmt.Errorf("trainer: checkpoint %s header: %w", path, err)
	}
	return writeAtomic(path, func(w io.Writer) error {
		crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
		bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 1<<20)
		bw.WriteString(ckptMagic)
		var b [8]byte
		binary.LittleEndian.PutUint32(b[:4], ckptVersion)
		binary.LittleEndian.PutUint32(b[4:], uint32(len(hdr)))
		bw.Write(b[:])
		bw.Write(hdr)
		writeFloats(bw, ck.Params)
		if hasOpt {
			writeFloats(bw, ck.M)
			writeFloats(bw, ck.V)
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		_, err := w.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32()))
		return err
	})
}

func writeFloats(w *bufio.Writer, f []float32) {
	var b [4]byte
	for _, v := range f {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
		w.Write(b[:])
	}
}

// countingReader tracks the offset for error messages and feeds a checksum.
type countingReader struct {
	r   *bufio.Reader
	off int64
	crc hash.Hash32
}

func (c *countingReader) full(p []byte) error {
	n, err := io.ReadFull(c.r, p)
	c.crc.Write(p[:n])
	c.off += int64(n)
	return err
}

// LoadCheckpoint reads and verifies a checkpoint written by SaveCheckpoint.
// A missing, truncated or corrupt file is an error that names the file and
// the byte offset.
func LoadCheckpoint(path string) (*Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("trainer: open checkpoint: %w", err)
	}
	defer f.Close()
	cr := &countingReader{r: bufio.NewReaderSize(f, 1<<20), crc: crc32.New(crc32.MakeTable(crc32.Castagnoli))}
	fail := func(what string, err error) (*Checkpoint, error) {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("file is truncated")
		}
		return nil, fmt.Errorf("trainer: checkpoint %s at byte %d: %s: %w", path, cr.off, what, err)
	}
	var head [16]byte
	if err := cr.full(head[:]); err != nil {
		return fail("header", err)
	}
	if string(head[:8]) != ckptMagic {
		return nil, fmt.Errorf("trainer: %s is not a smelt checkpoint (bad magic at byte 0)", path)
	}
	if v := binary.LittleEndian.Uint32(head[8:]); v != ckptVersion {
		return nil, fmt.Errorf("trainer: checkpoint %s has version %d, this smelt reads %d", path, v, ckptVersion)
	}
	hlen := binary.LittleEndian.Uint32(head[12:])
	if hlen > 1<<26 {
		return fail("header length", fmt.Errorf("implausible %d bytes", hlen))
	}
	hb := make([]byte, hlen)
	if err := cr.full(hb); err != nil {
		return fail("header", err)
	}
	var h ckptHeader
	if err := json.Unmarshal(hb, &h); err != nil {
		return fail("header JSON", err)
	}
	if err := h.Config.Validate(); err != nil {
		return fail("config", err)
	}
	if h.NumParams != h.Config.NumParams() {
		return fail("params", fmt.Errorf("%d params for a config of %d", h.NumParams, h.Config.NumParams()))
	}
	ck := h.Checkpoint
	read := func(n int) ([]float32, error) {
		out := make([]float32, n)
		buf := make([]byte, 1<<16)
		for i := 0; i < n; {
			k := min(n-i, len(buf)/4)
			if err := cr.full(buf[:4*k]); err != nil {
				return nil, err
			}
			for j := range k {
				out[i+j] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*j:]))
			}
			i += k
		}
		return out, nil
	}
	if ck.Params, err = read(h.NumParams); err != nil {
		return fail("params", err)
	}
	if h.HasOptimizer {
		if ck.M, err = read(h.NumParams); err != nil {
			return fail("optimizer", err)
		}
		if ck.V, err = read(h.NumParams); err != nil {
			return fail("optimizer", err)
		}
	}
	want := cr.crc.Sum32()
	var tail [4]byte
	if _, err := io.ReadFull(cr.r, tail[:]); err != nil {
		return fail("checksum", err)
	}
	if got := binary.LittleEndian.Uint32(tail[:]); got != want {
		return nil, fmt.Errorf("trainer: checkpoint %s is corrupt: checksum %08x, contents hash to %08x", path, got, want)
	}
	if n, _ := cr.r.Read(tail[:1]); n != 0 {
		return nil, fmt.Errorf("trainer: checkpoint %s has trailing bytes after offset %d", path, cr.off+4)
	}
	return &ck, nil
}

// writeAtomic writes path through a temporary file in the same directory,
// fsyncs it, renames it into place and fsyncs the directory.
func writeAtomic(path string, fill func(io.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("trainer: create %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("trainer: write %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := fill(f); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("trainer: close %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("trainer: publish %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
