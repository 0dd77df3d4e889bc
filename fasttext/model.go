package fasttext

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"

	"github.com/smelt-dev/smelt/shards"
)

// File format constants: every fastText model file starts with this magic
// number and a format version (12 for every release since 2017; 11 is the
// older layout, read with its one difference applied).
const (
	fileMagic   = 793712314
	fileVersion = 12
)

// LossName is the training loss, which also decides how a model turns its
// hidden vector into label probabilities.
type LossName int32

// The losses, numbered as in the file format.
const (
	LossHS      LossName = 1 // hierarchical softmax over a Huffman tree of labels
	LossNS      LossName = 2 // negative sampling (sigmoid per label)
	LossSoftmax LossName = 3 // softmax
	LossOVA     LossName = 4 // one-vs-all (independent sigmoid per label)
)

func (l LossName) String() string {
	switch l {
	case LossHS:
		return "hs"
	case LossNS:
		return "ns"
	case LossSoftmax:
		return "softmax"
	case LossOVA:
		return "ova"
	}
	return fmt.Sprintf("loss(%d)", int32(l))
}

// ModelName is the kind of model: only supervised models predict labels.
type ModelName int32

// The model kinds, numbered as in the file format.
const (
	ModelCBOW       ModelName = 1
	ModelSkipgram   ModelName = 2
	ModelSupervised ModelName = 3
)

// Args are the hyper-parameters stored in a model file, in file order.
type Args struct {
	Dim          int32
	WS           int32
	Epoch        int32
	MinCount     int32
	Neg          int32
	WordNgrams   int32
	Loss         LossName
	Model        ModelName
	Bucket       int32
	Minn         int32
	Maxn         int32
	LRUpdateRate int32
	T            float64
}

// Model is a loaded fastText model. It is safe for concurrent use: all
// prediction state lives on the caller's stack or in pooled buffers.
type Model struct {
	Args Args
	// Version is the file format version the model was read from.
	Version int32
	dict    *Dictionary
	input   matrix
	output  matrix
	// tree is the Huffman tree of labels (hierarchical softmax only).
	tree   []treeNode
	states sync.Pool
}

// Dict returns the model's dictionary.
func (m *Model) Dict() *Dictionary { return m.dict }

// Quantized reports whether the input matrix is product-quantized (.ftz).
func (m *Model) Quantized() bool { _, ok := m.input.(*quantMatrix); return ok }

// Labels returns the model's labels (with their prefix, e.g. "__label__en")
// in label-id order.
func (m *Model) Labels() []string {
	out := make([]string, m.dict.nlabels)
	for i := range out {
		out[i] = m.dict.words[int(m.dict.nwords)+i].word
	}
	return out
}

// Load reads a fastText model file (.bin, or quantized .ftz).
func Load(path string) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fasttext: %w", err)
	}
	defer f.Close()
	m, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("fasttext model %s: %w", path, err)
	}
	return m, nil
}

// reader decodes the little-endian fields of a model file, remembering the
// first error and the offset at which it happened.
type reader struct {
	r   *bufio.Reader
	off int64
	// size is the input's length in bytes, or -1 when it is not known
	// (then arrays are read in chunks and grow only as data arrives).
	size int64
	err  error
	buf  [8]byte
}

// fits checks, before anything is allocated for them, that n items of
// unit bytes each can still be in the input: a size field of a crafted
// file may ask for gigabytes that the file does not hold.
func (r *reader) fits(n, unit int64, what string) bool {
	if r.err != nil {
		return false
	}
	if n < 0 {
		r.fail(what, fmt.Errorf("negative size %d", n))
		return false
	}
	if r.size >= 0 && n > (r.size-r.off)/unit {
		r.fail(what, fmt.Errorf("%d items of %d bytes asked for, the file has %d bytes left", n, unit, r.size-r.off))
		return false
	}
	return true
}

func (r *reader) fail(what string, err error) {
	if r.err == nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		r.err = fmt.Errorf("%s at byte offset %d: %w", what, r.off, err)
	}
}

func (r *reader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	b := r.buf[:n]
	if _, err := io.ReadFull(r.r, b); err != nil {
		r.fail(what, err)
		return nil
	}
	r.off += int64(n)
	return b
}

func (r *reader) i32(what string) int32 {
	b := r.bytes(4, what)
	if b == nil {
		return 0
	}
	return int32(binary.LittleEndian.Uint32(b))
}

func (r *reader) i64(what string) int64 {
	b := r.bytes(8, what)
	if b == nil {
		return 0
	}
	return int64(binary.LittleEndian.Uint64(b))
}

func (r *reader) f64(what string) float64 {
	b := r.bytes(8, what)
	if b == nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b))
}

func (r *reader) u8(what string) byte {
	b := r.bytes(1, what)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) boolean(what string) bool {
	v := r.u8(what)
	if r.err == nil && v > 1 {
		r.fail(what, fmt.Errorf("bad boolean %d", v))
	}
	return v == 1
}

// cstring reads a NUL-terminated string.
func (r *reader) cstring(what string) string {
	if r.err != nil {
		return ""
	}
	s, err := r.r.ReadString(0)
	if err != nil {
		r.fail(what, err)
		return ""
	}
	r.off += int64(len(s))
	return s[:len(s)-1]
}

// maxWeight bounds the magnitude of a weight: real models stay within a
// few hundred, and with |w| <= 1e6 no dot product of dim <= 2^16 terms (a
// quantized row's norm included) can overflow float32 into Inf or NaN.
const maxWeight = 1e6

// floats reads n float32 values, refusing NaN, Inf and weights beyond
// maxWeight (they would turn every probability into NaN or index the
// sigmoid table out of range).
func (r *reader) floats(n int64, what string) []float32 {
	if !r.fits(n, 4, what) {
		return nil
	}
	const chunk = 1 << 14
	var out []float32
	if r.size >= 0 {
		out = make([]float32, 0, n)
	}
	buf := make([]byte, 4*chunk)
	for i := int64(0); i < n; i += chunk {
		k := min(chunk, n-i)
		b := buf[:4*k]
		if _, err := io.ReadFull(r.r, b); err != nil {
			r.fail(what, err)
			return nil
		}
		for j := range k {
			v := math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
			if !(v >= -maxWeight && v <= maxWeight) { // NaN fails both
				r.off += 4 * j
				r.fail(what, fmt.Errorf("weight %v (NaN, Inf or beyond ±%g)", v, maxWeight))
				return nil
			}
			out = append(out, v)
		}
		r.off += 4 * k
	}
	return out
}

func (r *reader) raw(n int64, what string) []byte {
	if !r.fits(n, 1, what) {
		return nil
	}
	if r.size >= 0 {
		out := make([]byte, n)
		if _, err := io.ReadFull(r.r, out); err != nil {
			r.fail(what, err)
			return nil
		}
		r.off += n
		return out
	}
	// Unknown length: grow with the data actually read.
	var out []byte
	for int64(len(out)) < n {
		k := min(1<<16, n-int64(len(out)))
		b := make([]byte, k)
		if _, err := io.ReadFull(r.r, b); err != nil {
			r.fail(what, err)
			return nil
		}
		out = append(out, b...)
		r.off += k
	}
	return out
}

// maxMatrixFloats bounds a matrix read from a file (16 GiB of float32), so a
// corrupt size field gives an error, not an attempt to allocate exabytes.
const maxMatrixFloats = 1 << 32

// inputSize returns how many bytes are left in in, or -1 when that is not
// known (a pipe or network stream).
func inputSize(in io.Reader) int64 {
	switch v := in.(type) {
	case interface{ Len() int }: // bytes.Reader, strings.Reader, bytes.Buffer
		return int64(v.Len())
	case *os.File:
		fi, err := v.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return -1
		}
		pos, err := v.Seek(0, io.SeekCurrent)
		if err != nil {
			return -1
		}
		return fi.Size() - pos
	}
	return -1
}

// Limits on header fields that decide work per word (see Read).
const (
	maxCharNgram   = 32  // minn and maxn (fastText's defaults: 2..5 supervised, 3..6 otherwise)
	maxWordNgrams  = 100 // wordNgrams (fastText's default 1; published models use up to 5)
	minDictEntryOn = 10  // bytes of the smallest dictionary entry: NUL, count, type
)

// Read decodes a fastText model from in. Every size read from the input is
// checked, before anything is allocated for it, against the bytes the input
// still holds (when in is a file, bytes.Reader or strings.Reader; other
// readers' arrays grow only with the data that arrives) and a sane bound;
// weights must be finite and within ±1e6. A crafted or corrupt file gives
// an error naming the field and its byte offset.
func Read(in io.Reader) (*Model, error) {
	r := &reader{r: bufio.NewReaderSize(in, 1<<16), size: inputSize(in)}
	magic := r.i32("magic")
	if r.err == nil && magic != fileMagic {
		return nil, fmt.Errorf("not a fastText model (magic %#x at byte offset 0)", uint32(magic))
	}
	m := &Model{Version: r.i32("version")}
	if r.err == nil && (m.Version < 11 || m.Version > fileVersion) {
		return nil, fmt.Errorf("fastText file format version %d at byte offset 4 (this reader knows 11 and 12)", m.Version)
	}
	a := &m.Args
	for _, p := range []*int32{&a.Dim, &a.WS, &a.Epoch, &a.MinCount, &a.Neg, &a.WordNgrams,
		(*int32)(&a.Loss), (*int32)(&a.Model), &a.Bucket, &a.Minn, &a.Maxn, &a.LRUpdateRate} {
		*p = r.i32("args")
	}
	a.T = r.f64("args")
	if r.err != nil {
		return nil, r.err
	}
	if m.Version == 11 && a.Model == ModelSupervised {
		// Version-11 supervised models were trained without character
		// n-grams whatever maxn says.
		a.Maxn = 0
	}
	if a.Dim <= 0 || a.Dim > 1<<16 || a.Bucket < 0 || a.Minn < 0 || a.Maxn < 0 || a.WordNgrams < 0 ||
		a.Minn > maxCharNgram || a.Maxn > maxCharNgram || a.WordNgrams > maxWordNgrams {
		return nil, fmt.Errorf("implausible args (dim %d, bucket %d, minn %d, maxn %d, wordNgrams %d) at byte offset 8",
			a.Dim, a.Bucket, a.Minn, a.Maxn, a.WordNgrams)
	}
	switch a.Loss {
	case LossHS, LossNS, LossSoftmax, LossOVA:
	default:
		return nil, fmt.Errorf("unknown loss %d at byte offset 32", int32(a.Loss))
	}
	d, err := readDictionary(r, a)
	if err != nil {
		return nil, err
	}
	m.dict = d
	quantIn := r.boolean("input quantization flag")
	if m.input, err = readMatrix(r, quantIn, "input matrix"); err != nil {
		return nil, err
	}
	quantOut := r.boolean("output quantization flag")
	if m.output, err = readMatrix(r, quantOut, "output matrix"); err != nil {
		return nil, err
	}
	if !quantIn && d.pruneSize >= 0 {
		return nil, errors.New("invalid model: a pruned dictionary with an unquantized input matrix")
	}
	wantIn := int64(d.nwords) + int64(a.Bucket)
	if d.pruneSize >= 0 {
		wantIn = int64(d.nwords) + d.pruneSize
	}
	if got := m.input.rows(); got != wantIn || m.input.cols() != int64(a.Dim) {
		return nil, fmt.Errorf("input matrix is %dx%d, the dictionary and args want %dx%d", got, m.input.cols(), wantIn, a.Dim)
	}
	if m.output.cols() != int64(a.Dim) {
		return nil, fmt.Errorf("output matrix has %d columns, want dim %d", m.output.cols(), a.Dim)
	}
	if a.Model == ModelSupervised {
		// One row per label; hierarchical softmax uses the first
		// nlabels-1 for its inner nodes.
		if wantOut := int64(d.nlabels); m.output.rows() != wantOut {
			return nil, fmt.Errorf("output matrix has %d rows for %d labels with loss %s", m.output.rows(), d.nlabels, a.Loss)
		}
		if d.nlabels == 0 {
			return nil, errors.New("supervised model without labels")
		}
		if a.Loss == LossHS {
			m.tree = buildTree(d.labelCounts())
		}
	}
	// Nothing may follow the output matrix.
	if _, err := r.r.ReadByte(); err == nil {
		return nil, fmt.Errorf("trailing bytes after the output matrix at byte offset %d", r.off)
	}
	return m, nil
}

func readMatrix(r *reader, quant bool, what string) (matrix, error) {
	if quant {
		return readQuantMatrix(r, what)
	}
	rows, cols := r.i64(what), r.i64(what)
	if r.err != nil {
		return nil, r.err
	}
	if rows < 0 || cols < 0 || cols > 1<<16 || (cols > 0 && rows > maxMatrixFloats/cols) {
		return nil, fmt.Errorf("%s: implausible size %dx%d at byte offset %d", what, rows, cols, r.off-16)
	}
	data := r.floats(rows*cols, what)
	if r.err != nil {
		return nil, r.err
	}
	return &denseMatrix{m: rows, n: cols, data: data}, nil
}

// writer encodes little-endian fields, remembering the first error.
type writer struct {
	w   *bufio.Writer
	err error
	buf []byte
}

func (w *writer) put(b []byte) {
	if w.err == nil {
		_, w.err = w.w.Write(b)
	}
}
func (w *writer) i32(v int32) { w.put(binary.LittleEndian.AppendUint32(w.buf[:0], uint32(v))) }
func (w *writer) i64(v int64) { w.put(binary.LittleEndian.AppendUint64(w.buf[:0], uint64(v))) }
func (w *writer) f64(v float64) {
	w.put(binary.LittleEndian.AppendUint64(w.buf[:0], math.Float64bits(v)))
}
func (w *writer) boolean(v bool) {
	if v {
		w.put([]byte{1})
	} else {
		w.put([]byte{0})
	}
}
func (w *writer) floats(v []float32) {
	b := w.buf[:0]
	for i, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		if len(b) >= 1<<16 || i == len(v)-1 {
			w.put(b)
			b = b[:0]
		}
	}
}

// Write encodes m in fastText's file format (version 12), which the
// reference fastText loads.
func (m *Model) Write(out io.Writer) error {
	w := &writer{w: bufio.NewWriterSize(out, 1<<16), buf: make([]byte, 0, 1<<16+8)}
	w.i32(fileMagic)
	w.i32(fileVersion)
	a := m.Args
	for _, v := range []int32{a.Dim, a.WS, a.Epoch, a.MinCount, a.Neg, a.WordNgrams, int32(a.Loss), int32(a.Model),
		a.Bucket, a.Minn, a.Maxn, a.LRUpdateRate} {
		w.i32(v)
	}
	w.f64(a.T)
	m.dict.write(w)
	for _, mat := range []matrix{m.input, m.output} {
		q, isQ := mat.(*quantMatrix)
		w.boolean(isQ)
		if isQ {
			q.write(w)
		} else {
			d := mat.(*denseMatrix)
			w.i64(d.m)
			w.i64(d.n)
			w.floats(d.data)
		}
	}
	if w.err != nil {
		return w.err
	}
	return w.w.Flush()
}

// Save writes m to path atomically (temporary file, fsync, rename).
func (m *Model) Save(path string) error {
	f, err := shards.CreateAtomic(path)
	if err != nil {
		return fmt.Errorf("save fasttext model: %w", err)
	}
	if err := m.Write(f); err != nil {
		f.Abort()
		return fmt.Errorf("save fasttext model %s: %w", path, err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("save fasttext model %s: %w", path, err)
	}
	return nil
}
