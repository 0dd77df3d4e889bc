package filter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"

	"github.com/smelt-dev/smelt/shards"
)

// Model file format, version 1 (all integers and floats little-endian):
//
//	magic    8 bytes "SMELTQC\x00"
//	version  uint32 (1)
//	bits     uint32 (buckets = 2^bits, 10..28)
//	flags    uint32 (bit 0: bigrams; others must be 0)
//	metaLen  uint32, then metaLen bytes of JSON describing the training run
//	bias     float32
//	weights  2^bits float32
//	crc32    uint32 (IEEE) of every byte before it
//
// A 2^20-bucket model is 4 MiB and loads in a few milliseconds.
const (
	modelMagic   = "SMELTQC\x00"
	modelVersion = 1
	flagBigrams  = 1
)

// Model is a trained quality classifier: logistic regression over hashed
// word features. It is safe for concurrent use.
type Model struct {
	// Bits is log2 of the number of hash buckets.
	Bits uint
	// Bigrams says whether word bigrams are features besides unigrams.
	Bigrams bool
	// Bias and Weights are the logistic regression's parameters.
	Bias    float32
	Weights []float32
	// Meta is free-form JSON about the training run (inputs, metrics).
	Meta []byte
}

// Score returns the model's probability in [0, 1] that text is like the
// positive (reference) class.
func (m *Model) Score(text string) float64 {
	h := getHasher(m.Bits)
	defer putHasher(h)
	h.count(text, m.Bigrams)
	var dot, ss float64
	for _, b := range h.touched {
		v := tf(h.counts[b])
		ss += v * v
		dot += float64(m.Weights[b]) * v
	}
	z := float64(m.Bias)
	if ss > 0 {
		z += dot / math.Sqrt(ss)
	}
	return sigmoid(z)
}

// ScoreVector scores an already extracted feature vector.
func (m *Model) ScoreVector(v Vector) float64 {
	z := float64(m.Bias)
	for i, b := range v.Index {
		z += float64(m.Weights[b]) * float64(v.Value[i])
	}
	return sigmoid(z)
}

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// MarshalBinary encodes the model in the version-1 file format.
func (m *Model) MarshalBinary() ([]byte, error) {
	if len(m.Weights) != 1<<m.Bits {
		return nil, fmt.Errorf("model: %d weights for %d bits", len(m.Weights), m.Bits)
	}
	var buf bytes.Buffer
	buf.Grow(32 + len(m.Meta) + 4*len(m.Weights))
	buf.WriteString(modelMagic)
	var flags uint32
	if m.Bigrams {
		flags |= flagBigrams
	}
	for _, v := range []uint32{modelVersion, uint32(m.Bits), flags, uint32(len(m.Meta))} {
		buf.Write(binary.LittleEndian.AppendUint32(nil, v))
	}
	buf.Write(m.Meta)
	out := buf.Bytes()
	out = binary.LittleEndian.AppendUint32(out, math.Float32bits(m.Bias))
	for _, w := range m.Weights {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(w))
	}
	return binary.LittleEndian.AppendUint32(out, crc32.ChecksumIEEE(out)), nil
}

// UnmarshalModel decodes a model file's bytes.
func UnmarshalModel(data []byte) (*Model, error) {
	if len(data) < 24 || string(data[:8]) != modelMagic {
		return nil, errors.New("not a smelt quality model (bad magic)")
	}
	le := binary.LittleEndian
	if v := le.Uint32(data[8:]); v != modelVersion {
		return nil, fmt.Errorf("quality model version %d, this smelt reads version %d", v, modelVersion)
	}
	bits, flags, metaLen := le.Uint32(data[12:]), le.Uint32(data[16:]), le.Uint32(data[20:])
	if bits < 10 || bits > 28 {
		return nil, fmt.Errorf("quality model: bad bucket bits %d (offset 12)", bits)
	}
	if flags&^flagBigrams != 0 {
		return nil, fmt.Errorf("quality model: unknown flags %#x (offset 16)", flags)
	}
	want := 24 + int64(metaLen) + 4 + 4<<int64(bits) + 4
	if int64(len(data)) != want {
		return nil, fmt.Errorf("quality model: %d bytes, want %d (truncated or corrupt)", len(data), want)
	}
	body := data[:len(data)-4]
	if got, sum := crc32.ChecksumIEEE(body), le.Uint32(data[len(data)-4:]); got != sum {
		return nil, fmt.Errorf("quality model: checksum mismatch (offset %d): file is corrupt", len(data)-4)
	}
	m := &Model{Bits: uint(bits), Bigrams: flags&flagBigrams != 0}
	off := 24
	m.Meta = append([]byte(nil), data[off:off+int(metaLen)]...)
	off += int(metaLen)
	m.Bias = math.Float32frombits(le.Uint32(data[off:]))
	off += 4
	m.Weights = make([]float32, 1<<bits)
	for i := range m.Weights {
		m.Weights[i] = math.Float32frombits(le.Uint32(data[off+4*i:]))
	}
	return m, nil
}

// SaveModel writes m to path atomically.
func SaveModel(path string, m *Model) error {
	data, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	if err := shards.WriteFileAtomic(path, data); err != nil {
		return fmt.Errorf("save model %s: %w", path, err)
	}
	return nil
}

// LoadModel reads a model file.
func LoadModel(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	m, err := UnmarshalModel(data)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	return m, nil
}
