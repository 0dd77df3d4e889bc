package shards

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// Column names of token shards.
const (
	ColTokens  = "tokens"
	ColNTokens = "n_tokens"
)

// TokenSchema returns the Arrow schema of token shards: id, source, tokens
// (list<uint16> when the vocabulary has at most 65536 ids, else
// list<uint32>) and n_tokens (int64). The schema metadata records the
// format version and the tokenizer.
func TokenSchema(tok TokenizerInfo) *arrow.Schema {
	var elem arrow.DataType = arrow.PrimitiveTypes.Uint16
	if tok.VocabSize > 1<<16 {
		elem = arrow.PrimitiveTypes.Uint32
	}
	fields := []arrow.Field{
		{Name: ColID, Type: arrow.BinaryTypes.String},
		{Name: ColSource, Type: arrow.BinaryTypes.String},
		{Name: ColTokens, Type: arrow.ListOfNonNullable(elem)},
		{Name: ColNTokens, Type: arrow.PrimitiveTypes.Int64},
	}
	md := arrow.NewMetadata(
		[]string{"smelt.format", "smelt.tokenizer", "smelt.vocab_size", "smelt.eot"},
		[]string{fmt.Sprintf("tokens/v%d", FormatVersion), tok.Name, fmt.Sprint(tok.VocabSize), fmt.Sprint(tok.EOT)},
	)
	return arrow.NewSchema(fields, &md)
}

// TokenWriterOptions configure a TokenWriter.
type TokenWriterOptions struct {
	// Tokenizer describes the token ids written; VocabSize chooses the
	// column width and bounds every id.
	Tokenizer TokenizerInfo
	// TargetBytes is the uncompressed size at which a shard is cut
	// (default DefaultTargetBytes). A shard may exceed it by one document.
	TargetBytes int64
	// Prefix starts every shard name (default "part").
	Prefix string
	// FirstIndex is the index of the first shard (a resumed run continues
	// the numbering).
	FirstIndex int
	// BatchRows and BatchBytes bound an Arrow record batch: it is written
	// when it has BatchRows rows (default 65536) or BatchBytes bytes of
	// data (default DefaultTokenBatchBytes), whichever comes first.
	BatchRows  int
	BatchBytes int64
	// Manual turns off cutting inside Write: the caller cuts with Cut when
	// Full reports true.
	Manual bool
	// Compression of the shards' buffers: TokenCompressionNone (the
	// default when empty) or TokenCompressionZstd.
	Compression string
}

// Compression of token shards' Arrow buffers (the token_compression recipe
// key, smelt tokenize --token-compression).
const (
	// TokenCompressionNone stores the buffers as they are: raw
	// little-endian ids, as nanoGPT, llm.c and Megatron store them, which
	// pyarrow can memory-map and hand to numpy without a copy. It is the
	// default: compressing cost the tokenize stage about a fifth of its
	// CPU (docs/tokenizers.md) for 1.6x less disk on GPT-2 ids.
	TokenCompressionNone = "none"
	// TokenCompressionZstd compresses each buffer as one zstd frame at
	// level 1, Arrow's ZSTD buffer compression (the only kind before
	// 2026-12-05).
	TokenCompressionZstd = "zstd"
)

// CheckTokenCompression resolves a token compression setting: "" is the
// default, TokenCompressionNone; anything but none or zstd is an error.
func CheckTokenCompression(c string) (string, error) {
	switch c {
	case "", TokenCompressionNone:
		return TokenCompressionNone, nil
	case TokenCompressionZstd:
		return c, nil
	}
	return "", fmt.Errorf("token compression %q: want none or zstd", c)
}

// DefaultTokenBatchBytes is the default data size of a token shard's record
// batch. Arrow Go starts a new zstd decoder (and allocates its buffers) for
// every record batch it reads: going from batches of 1024 documents (about
// 1 MB) to 4 MiB took BenchmarkLoader from 155-180 to 235-245 million
// tokens per CPU-second.
const DefaultTokenBatchBytes = 4 << 20

// TokenWriter writes tokenized documents into size-bounded Arrow IPC token
// shards, with smelt's own IPC writer (arrowwrite.go: buffers uncompressed,
// or at zstd level 1 by one reused encoder). Like DocWriter, shard names
// and bytes depend only on what is written and the options.
type TokenWriter struct {
	shardSet
	opt  TokenWriterOptions
	wide bool
	cols *tokenFormat
}

// NewTokenWriter writes token shards into dir, which must exist.
func NewTokenWriter(dir string, opt TokenWriterOptions) (*TokenWriter, error) {
	if opt.Tokenizer.VocabSize <= 0 || opt.Tokenizer.VocabSize > 1<<32 {
		return nil, fmt.Errorf("token writer: vocabulary size %d out of range", opt.Tokenizer.VocabSize)
	}
	if opt.TargetBytes <= 0 {
		opt.TargetBytes = DefaultTargetBytes
	}
	if opt.Prefix == "" {
		opt.Prefix = "part"
	}
	if opt.BatchRows <= 0 {
		opt.BatchRows = 1 << 16
	}
	if opt.BatchBytes <= 0 {
		opt.BatchBytes = DefaultTokenBatchBytes
	}
	comp, err := CheckTokenCompression(opt.Compression)
	if err != nil {
		return nil, fmt.Errorf("token writer: %w", err)
	}
	opt.Compression = comp
	cols := newTokenFormat(opt.Tokenizer, opt.BatchBytes, comp == TokenCompressionZstd)
	return &TokenWriter{
		shardSet: newShardSet(dir, opt.Prefix, cols, opt.FirstIndex, opt.TargetBytes, opt.BatchRows, opt.BatchBytes, nil),
		opt:      opt,
		wide:     opt.Tokenizer.VocabSize > 1<<16,
		cols:     cols,
	}, nil
}

// tokenWidth is the number of bytes a token takes in a shard.
func (w *TokenWriter) tokenWidth() int64 {
	if w.wide {
		return 4
	}
	return 2
}

// Write appends one document's tokens. Every id must be below the
// vocabulary size.
func (w *TokenWriter) Write(id, source string, toks []uint32) error {
	if err := w.cols.appendRow(id, source, toks, uint64(w.opt.Tokenizer.VocabSize)); err != nil {
		return err
	}
	n := int64(len(id)+len(source)+8) + int64(len(toks))*w.tokenWidth()
	if err := w.added(n, int64(len(toks))); err != nil {
		return err
	}
	if !w.opt.Manual && w.Full() {
		return w.Cut()
	}
	return nil
}

// TokenShard is one token shard held in memory, decoded for random access
// by row. Tokens of row i are Tokens(i); ids are bounded by the vocabulary
// given to ReadTokenShard.
type TokenShard struct {
	Path string
	ids  []string
	src  []string
	// Offsets has Rows()+1 entries into the flat token buffer.
	offs []int64
	u16  []uint16
	u32  []uint32
}

// Rows is the number of documents in the shard.
func (s *TokenShard) Rows() int { return len(s.ids) }

// ID is row i's document id.
func (s *TokenShard) ID(i int) string { return s.ids[i] }

// Source is row i's source name.
func (s *TokenShard) Source(i int) string { return s.src[i] }

// Len is the number of tokens of row i.
func (s *TokenShard) Len(i int) int { return int(s.offs[i+1] - s.offs[i]) }

// Tokens returns the total number of tokens in the shard.
func (s *TokenShard) Tokens() int64 { return s.offs[len(s.offs)-1] }

// AppendTokens appends tokens [from, to) of row i to dst as uint32.
func (s *TokenShard) AppendTokens(dst []uint32, i, from, to int) []uint32 {
	lo := s.offs[i] + int64(from)
	hi := s.offs[i] + int64(to)
	if s.u32 != nil {
		return append(dst, s.u32[lo:hi]...)
	}
	src := s.u16[lo:hi]
	n := len(dst)
	dst = append(dst, make([]uint32, len(src))...)
	out := dst[n:]
	for j, t := range src {
		out[j] = uint32(t)
	}
	return dst
}

// ReadTokenShard reads a token shard file whole. When info is not nil the
// file's size and sha256 must match it; vocab, when positive, bounds every
// token id. Errors name the file.
func ReadTokenShard(path string, info *ShardInfo, vocab int) (*TokenShard, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token shard %s: %w", path, err)
	}
	if info != nil {
		if int64(len(data)) != info.Bytes {
			return nil, fmt.Errorf("token shard %s: %d bytes, manifest says %d (truncated or replaced)", path, len(data), info.Bytes)
		}
		if sum := sha256Hex(data); sum != info.SHA256 {
			return nil, fmt.Errorf("token shard %s: sha256 %s does not match the manifest's %s", path, sum, info.SHA256)
		}
	}
	// A corrupt compressed buffer can claim any uncompressed size, and the
	// Arrow reader allocates what it claims: bound what decoding may
	// allocate by what the shard can legitimately hold.
	limit := 256*int64(len(data)) + 64<<20
	var rows, tokens int64
	if info != nil {
		limit = 4*info.DataBytes + 64*info.Rows + 1<<20
		rows, tokens = info.Rows, info.Tokens
	}
	return decodeTokenShard(path, data, vocab, limit, rows, tokens)
}

// cappedAllocator is an Arrow allocator that panics (recovered by
// decodeTokenShard) once more than limit bytes have been asked for.
type cappedAllocator struct {
	limit, used int64
}

func (a *cappedAllocator) take(n int) {
	a.used += int64(n)
	if n < 0 || a.used > a.limit {
		panic(fmt.Sprintf("buffers claim more than the %d bytes this shard can hold", a.limit))
	}
}

func (a *cappedAllocator) Allocate(size int) []byte {
	a.take(size)
	return memory.DefaultAllocator.Allocate(size)
}

func (a *cappedAllocator) Reallocate(size int, b []byte) []byte {
	a.take(size - len(b))
	return memory.DefaultAllocator.Reallocate(size, b)
}

func (a *cappedAllocator) Free(b []byte) { memory.DefaultAllocator.Free(b) }

// decodeTokenShard decodes a token shard held in data. rows and tokens,
// when known, size the buffers up front (growing them by appending costs
// a third of the loader's time otherwise).
func decodeTokenShard(path string, data []byte, vocab int, limit, rows, tokens int64) (ts *TokenShard, err error) {
	defer func() {
		// The Arrow reader trusts offsets inside a file whose framing is
		// valid; a corrupt file must be an error, never a crash.
		if r := recover(); r != nil {
			ts, err = nil, fmt.Errorf("token shard %s: corrupt Arrow data: %v", path, r)
		}
	}()
	// Uncompressed shards in smelt's layout, without Arrow Go's copies
	// (tokenraw.go); the rest, and anything it does not take, through
	// Arrow Go.
	var wideRaw bool
	raw := &TokenShard{Path: path}
	if rows > 0 && tokens > 0 && rows <= int64(len(data)) && tokens <= 64*int64(len(data)) {
		raw.ids, raw.src, raw.offs = make([]string, 0, rows), make([]string, 0, rows), make([]int64, 0, rows+1)
	}
	raw.offs = append(raw.offs, 0)
	if decodeRawTokenShard(data, raw, &wideRaw) {
		if wideRaw && raw.u32 == nil {
			raw.u32 = []uint32{}
		}
		if !wideRaw && raw.u16 == nil {
			raw.u16 = []uint16{}
		}
		raw.ids = cloneStrings(raw.ids)
		raw.src = internStrings(raw.src)
		if vocab > 0 {
			if err := raw.checkVocab(vocab); err != nil {
				return nil, err
			}
		}
		return raw, nil
	}
	return decodeTokenShardArrow(path, data, vocab, limit, rows, tokens)
}

// decodeTokenShardArrow is decodeTokenShard through Arrow Go's IPC reader.
func decodeTokenShardArrow(path string, data []byte, vocab int, limit, rows, tokens int64) (ts *TokenShard, err error) {
	defer func() {
		// The Arrow reader trusts offsets inside a file whose framing is
		// valid; a corrupt file must be an error, never a crash.
		if r := recover(); r != nil {
			ts, err = nil, fmt.Errorf("token shard %s: corrupt Arrow data: %v", path, r)
		}
	}()
	r, err := ipc.NewFileReader(bytes.NewReader(data), ipc.WithAllocator(&cappedAllocator{limit: limit}))
	if err != nil {
		return nil, fmt.Errorf("token shard %s: not a readable Arrow IPC file: %w", path, err)
	}
	defer r.Close()
	sc := r.Schema()
	col := func(name string) (int, error) {
		idx := sc.FieldIndices(name)
		if len(idx) == 0 {
			return 0, fmt.Errorf("token shard %s: not a token shard: no %q column", path, name)
		}
		return idx[0], nil
	}
	var ci [3]int
	for k, name := range []string{ColID, ColSource, ColTokens} {
		if ci[k], err = col(name); err != nil {
			return nil, err
		}
	}
	lt, ok := sc.Field(ci[2]).Type.(*arrow.ListType)
	if !ok {
		return nil, fmt.Errorf("token shard %s: column tokens is %s, want a list", path, sc.Field(ci[2]).Type)
	}
	ts = &TokenShard{Path: path}
	wide := false
	switch lt.Elem().ID() {
	case arrow.UINT16:
	case arrow.UINT32:
		wide = true
	default:
		return nil, fmt.Errorf("token shard %s: tokens are %s, want uint16 or uint32", path, lt.Elem())
	}
	// Preallocate from the manifest's counts only where the file could hold
	// them (a hand-edited count must not decide an allocation; issue 26).
	if rows > 0 && tokens > 0 && rows <= int64(len(data)) && tokens <= 64*int64(len(data)) {
		ts.ids = make([]string, 0, rows)
		ts.src = make([]string, 0, rows)
		ts.offs = make([]int64, 0, rows+1)
		if wide {
			ts.u32 = make([]uint32, 0, tokens)
		} else {
			ts.u16 = make([]uint16, 0, tokens)
		}
	}
	ts.offs = append(ts.offs, 0)
	for b := 0; b < r.NumRecords(); b++ {
		rec, err := r.RecordAt(b)
		if err != nil {
			return nil, fmt.Errorf("token shard %s: record batch %d: %w", path, b, err)
		}
		if rec.NumRows() == 0 {
			rec.Release()
			continue
		}
		ids, ok1 := rec.Column(ci[0]).(*array.String)
		srcs, ok2 := rec.Column(ci[1]).(*array.String)
		lists, ok3 := rec.Column(ci[2]).(*array.List)
		if !ok1 || !ok2 || !ok3 {
			rec.Release()
			return nil, fmt.Errorf("token shard %s: record batch %d: unexpected column types", path, b)
		}
		offs := lists.Offsets()
		for i := 0; i < int(rec.NumRows()); i++ {
			ts.ids = append(ts.ids, ids.Value(i))
			ts.src = append(ts.src, srcs.Value(i))
			n := int64(offs[i+1] - offs[i])
			if n < 0 {
				rec.Release()
				return nil, fmt.Errorf("token shard %s: record batch %d row %d: negative list length", path, b, i)
			}
			ts.offs = append(ts.offs, ts.offs[len(ts.offs)-1]+n)
		}
		lo, hi := int(offs[0]), int(offs[len(offs)-1])
		if wide {
			v := lists.ListValues().(*array.Uint32).Uint32Values()
			if hi > len(v) || lo > hi {
				rec.Release()
				return nil, fmt.Errorf("token shard %s: record batch %d: list offsets out of range", path, b)
			}
			ts.u32 = append(ts.u32, v[lo:hi]...)
		} else {
			v := lists.ListValues().(*array.Uint16).Uint16Values()
			if hi > len(v) || lo > hi {
				rec.Release()
				return nil, fmt.Errorf("token shard %s: record batch %d: list offsets out of range", path, b)
			}
			ts.u16 = append(ts.u16, v[lo:hi]...)
		}
		rec.Release()
	}
	if ts.u32 == nil && wide {
		ts.u32 = []uint32{}
	}
	if ts.u16 == nil && !wide {
		ts.u16 = []uint16{}
	}
	// Strings from the batches point into buffers that Release may free:
	// copy them once into one block.
	ts.ids = cloneStrings(ts.ids)
	ts.src = internStrings(ts.src)
	if vocab > 0 {
		if err := ts.checkVocab(vocab); err != nil {
			return nil, err
		}
	}
	return ts, nil
}

func (s *TokenShard) checkVocab(vocab int) error {
	var bad uint32
	var pos int
	found := false
	if s.u32 != nil {
		for i, t := range s.u32 {
			if uint64(t) >= uint64(vocab) {
				bad, pos, found = t, i, true
				break
			}
		}
	} else if vocab < 1<<16 {
		lim := uint16(vocab)
		for i, t := range s.u16 {
			if t >= lim {
				bad, pos, found = uint32(t), i, true
				break
			}
		}
	}
	if !found {
		return nil
	}
	row := 0
	for row+1 < len(s.offs) && s.offs[row+1] <= int64(pos) {
		row++
	}
	return fmt.Errorf("token shard %s: row %d (document %s): token id %d is outside the vocabulary of %d", s.Path, row, s.ids[row], bad, vocab)
}

func cloneStrings(in []string) []string {
	n := 0
	for _, s := range in {
		n += len(s)
	}
	buf := make([]byte, 0, n)
	for _, s := range in {
		buf = append(buf, s...)
	}
	all := string(buf)
	out := make([]string, len(in))
	off := 0
	for i, s := range in {
		out[i] = all[off : off+len(s)]
		off += len(s)
	}
	return out
}

func internStrings(in []string) []string {
	seen := map[string]string{}
	out := make([]string, len(in))
	for i, s := range in {
		v, ok := seen[s]
		if !ok {
			v = string([]byte(s))
			seen[s] = v
		}
		out[i] = v
	}
	return out
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
