package shards

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"unsafe"

	flatbuffers "github.com/google/flatbuffers/go"
	"github.com/klauspost/compress/zstd"
)

// This file reads document shards for the tokenize stage without Arrow Go's
// IPC reader. Through ipc.FileReader the stage read every shard twice (once
// to check its sha256, once to decode), started a new zstd decoder for every
// record batch, zeroed every decompressed buffer and then copied every
// string out of it: in BenchmarkTokenize (GPT-2, 9 MB of text, one core)
// reading cost the stage about 0.09 CPU-s per run, 60% of what encoding
// the text cost. Here a shard is read once into memory and hashed, each
// batch's buffers are decompressed by one reused decoder into a fresh
// block, and the documents' strings point into that block (it is never
// written again, and the garbage collector frees it once the last document
// of the batch is done). Files using anything else than the document
// schema's utf8 and float64 columns with no or ZSTD compression are left to
// the Arrow reader.

// fastDocMaxFile is the largest shard read whole into memory; bigger ones
// go through the Arrow reader batch by batch.
const fastDocMaxFile = 256 << 20

// decodeSlack is the room left after a batch's buffers in its block.
// klauspost's assembly decoder copies matches and literals 16 or 32 bytes at
// a time only where the output has room for a whole zstd block (128 KiB)
// plus 32 bytes past what it writes (or, for a frame that states its size,
// 32 bytes past the frame); short of that it takes a byte-exact variant,
// and with less than a block of room (a frame of unstated size) a plain Go
// decoder. With each buffer decoded into exactly its own size, every frame
// of BenchmarkTokenize's shards took the byte-exact variant.
const decodeSlack = 128<<10 + 64

// docDecoder returns a zstd decoder that refuses to produce more than
// limit bytes from one buffer (at least 64 MiB, which covers the window
// sizes zstd encoders use: Arrow Go's streaming encoder declares 8 MiB).
func docDecoder(limit int64) *zstd.Decoder {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(max(limit, 64<<20))))
	if err != nil {
		panic(fmt.Sprintf("zstd decoder: %v", err)) // only on invalid options
	}
	return d
}

// docDecoders recycles the decoders docDecoder makes for limits of at
// most 64 MiB (all alike: its floor). The takedown's filter reads each
// shard once, with a decoder of its own: at 1,000,000 documents, 600
// shards and 0.3 CPU-s of allocating their buffers, plus the collector's.
var docDecoders sync.Pool

// getDocDecoder returns docDecoder(limit), recycled where it can be.
func getDocDecoder(limit int64) *zstd.Decoder {
	if limit <= 64<<20 {
		if d, ok := docDecoders.Get().(*zstd.Decoder); ok {
			return d
		}
	}
	return docDecoder(limit)
}

// putDocDecoder gives back a decoder getDocDecoder returned for limit.
func putDocDecoder(d *zstd.Decoder, limit int64) {
	if d != nil && limit <= 64<<20 {
		docDecoders.Put(d)
	}
}

// errNotFast says a shard is valid for the Arrow reader but not one the
// fast reader handles.
var errNotFast = errors.New("shard layout not handled by the fast reader")

type fbt struct{ t flatbuffers.Table }

func fbRoot(b []byte) fbt {
	return fbt{flatbuffers.Table{Bytes: b, Pos: flatbuffers.GetUOffsetT(b)}}
}

func (t fbt) off(i int) flatbuffers.UOffsetT {
	return flatbuffers.UOffsetT(t.t.Offset(flatbuffers.VOffsetT(4 + 2*i)))
}

func (t fbt) table(i int) (fbt, bool) {
	o := t.off(i)
	if o == 0 {
		return fbt{}, false
	}
	return fbt{flatbuffers.Table{Bytes: t.t.Bytes, Pos: t.t.Indirect(o + t.t.Pos)}}, true
}

// vec returns the start and length of vector field i.
// vec returns the start and length of vector field i whose elements are
// elem bytes each; a length that reaches past the buffer (a crafted or
// damaged file) comes back as -1, before anything is allocated for it.
func (t fbt) vec(i, elem int) (flatbuffers.UOffsetT, int) {
	o := t.off(i)
	if o == 0 {
		return 0, 0
	}
	start, n := t.t.Vector(o), t.t.VectorLen(o)
	if n < 0 || int64(start)+int64(n)*int64(elem) > int64(len(t.t.Bytes)) {
		return start, -1
	}
	return start, n
}

func (t fbt) tableAt(start flatbuffers.UOffsetT, j int) fbt {
	x := start + flatbuffers.UOffsetT(j)*4
	return fbt{flatbuffers.Table{Bytes: t.t.Bytes, Pos: t.t.Indirect(x)}}
}

func (t fbt) str(i int) string {
	o := t.off(i)
	if o == 0 {
		return ""
	}
	return string(t.t.ByteVector(o + t.t.Pos))
}

func (t fbt) i64(start flatbuffers.UOffsetT) int64 { return t.t.GetInt64(start) }

// fastDocShard is a document shard held in memory.
type fastDocShard struct {
	path   string
	data   []byte
	limit  int64 // most bytes one buffer may claim uncompressed
	kinds  []byte
	names  []string
	blocks []fbBlock
	next   int
	// dec is reused across shards while decLimit covers their limit.
	dec      *zstd.Decoder
	decLimit int64
	// aliases is set once a document's string may point into data, which
	// then must not be reused for the next shard.
	aliases bool

	// Current batch.
	rows int
	row  int
	cols map[string]*fastCol
	// blocks2, when set, recycles batch blocks whose documents are all
	// done (DirReader.Done); cur is the current batch's.
	blocks2 *blockPool
	cur     *docBlock
	// interned holds copies of the source and lang values, which stages
	// keep as map keys: a string aliasing a batch would pin the batch.
	interned map[string]string
	// noText leaves the text column's data compressed: each document's
	// Text is as many zero bytes as its text has (OpenDocShardLengths).
	noText bool
}

// zeroText is the shared, never written, zero bytes that documents read
// without their text point into; zeroMu guards growing it.
var (
	zeroMu   sync.Mutex
	zeroText []byte
)

// zeros returns n zero bytes that must not be written (n is bounded by the
// caller: a buffer's length the shard's limit admits).
func zeros(n int64) []byte {
	zeroMu.Lock()
	defer zeroMu.Unlock()
	if int64(len(zeroText)) < n {
		zeroText = make([]byte, n)
	}
	return zeroText[:n:n]
}

// intern returns a copy of v that does not alias the batch.
func (s *fastDocShard) intern(v string) string {
	if c, ok := s.interned[v]; ok {
		return c
	}
	c := strings.Clone(v)
	if s.interned == nil {
		s.interned = map[string]string{}
	}
	if len(s.interned) < 4096 {
		s.interned[c] = c
	}
	return c
}

// fastCol is one decoded column of the current batch.
type fastCol struct {
	offs  []byte // utf8: int32 offsets
	data  []byte // utf8 bytes, or float64 values
	valid []byte // validity bitmap, nil when all valid
}

// openFastDocShard reads path whole, checks it against info and parses its
// footer. It returns errNotFast for a file the Arrow reader must handle.
// buf, if big enough, receives the file (its previous contents must not
// be in use).
func openFastDocShard(path string, info ShardInfo, verify bool, buf []byte) (s *fastDocShard, err error) {
	if info.Bytes > fastDocMaxFile || info.Bytes < 0 {
		return nil, errNotFast
	}
	data, err := readFileInto(path, info.Bytes, buf)
	if err != nil {
		return nil, fmt.Errorf("shard %s: %w", path, err)
	}
	if verify {
		if int64(len(data)) != info.Bytes {
			return nil, fmt.Errorf("shard %s: %d bytes, manifest says %d (truncated or replaced)", path, len(data), info.Bytes)
		}
		sum := sha256.Sum256(data)
		if h := hex.EncodeToString(sum[:]); h != info.SHA256 {
			return nil, fmt.Errorf("shard %s: sha256 %s does not match the manifest's %s", path, h, info.SHA256)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("%s: corrupt Arrow file: %v", path, r)
		}
	}()
	n := len(data)
	if n < 18 || string(data[:6]) != "ARROW1" || string(data[n-6:]) != "ARROW1" {
		return nil, errNotFast
	}
	flen := int(int32(binary.LittleEndian.Uint32(data[n-10:])))
	if flen <= 0 || flen > n-18 {
		return nil, fmt.Errorf("%s: footer length %d out of range", path, flen)
	}
	footer := fbRoot(data[n-10-flen : n-10])
	schema, ok := footer.table(1)
	if !ok {
		return nil, fmt.Errorf("%s: footer has no schema", path)
	}
	s = &fastDocShard{path: path, data: data, limit: info.DataBytes + 16*info.Rows + 1<<20}
	fstart, nf := schema.vec(1, 4)
	if nf < 0 {
		return nil, fmt.Errorf("%s: footer schema: corrupt field list", path)
	}
	for j := 0; j < nf; j++ {
		f := schema.tableAt(fstart, j)
		if _, ok := f.table(4); ok { // dictionary-encoded
			return nil, errNotFast
		}
		if _, nc := f.vec(5, 4); nc != 0 {
			return nil, errNotFast
		}
		kind := f.t.GetByteSlot(8, 0)
		switch kind {
		case fbTypeUtf8:
		case 3: // FloatingPoint: only double
			typ, ok := f.table(3)
			if !ok || typ.t.GetInt16Slot(4, 0) != 2 {
				return nil, errNotFast
			}
		default:
			return nil, errNotFast
		}
		s.kinds = append(s.kinds, kind)
		s.names = append(s.names, f.str(0))
	}
	bstart, nb := footer.vec(3, 24)
	if nb < 0 {
		return nil, fmt.Errorf("%s: footer: corrupt record batch list", path)
	}
	for j := 0; j < nb; j++ {
		x := bstart + flatbuffers.UOffsetT(24*j)
		blk := fbBlock{offset: footer.i64(x), metaLen: footer.t.GetInt32(x + 8), bodyLen: footer.i64(x + 16)}
		if blk.offset < 8 || blk.metaLen < 8 || blk.bodyLen < 0 || blk.offset+int64(blk.metaLen)+blk.bodyLen > int64(n) {
			return nil, fmt.Errorf("%s: record batch %d out of the file's bounds", path, j)
		}
		s.blocks = append(s.blocks, blk)
	}
	return s, nil
}

// loadBatch decodes record batch s.next.
func (s *fastDocShard) loadBatch() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: record batch %d: corrupt Arrow data: %v", s.path, s.next, r)
		}
	}()
	blk := s.blocks[s.next]
	s.next++
	meta := s.data[blk.offset : blk.offset+int64(blk.metaLen)]
	if binary.LittleEndian.Uint32(meta) == 0xFFFFFFFF {
		meta = meta[8:]
	} else {
		meta = meta[4:]
	}
	msg := fbRoot(meta)
	if msg.t.GetByteSlot(6, 0) != fbHeaderRecordBatch {
		return fmt.Errorf("%s: block %d is not a record batch", s.path, s.next-1)
	}
	rb, ok := msg.table(2)
	if !ok {
		return fmt.Errorf("%s: record batch %d has no header", s.path, s.next-1)
	}
	body := s.data[blk.offset+int64(blk.metaLen) : blk.offset+int64(blk.metaLen)+blk.bodyLen]
	rows := rb.t.GetInt64Slot(4, 0)
	if rows < 0 || rows > int64(len(s.data)) {
		return fmt.Errorf("%s: record batch %d claims %d rows", s.path, s.next-1, rows)
	}
	compressed := false
	if c, ok := rb.table(3); ok {
		if c.t.GetInt8Slot(4, 0) != fbCodecZstd {
			return errNotFast
		}
		compressed = true
	}
	nstart, nn := rb.vec(1, 16)
	bstart, nbuf := rb.vec(2, 16)
	if nn < 0 || nbuf < 0 {
		return fmt.Errorf("%s: record batch %d: corrupt node or buffer list", s.path, s.next-1)
	}
	if nn != len(s.kinds) {
		return fmt.Errorf("%s: record batch %d has %d columns, schema %d", s.path, s.next-1, nn, len(s.kinds))
	}
	// The text column's data buffer, which noText leaves compressed.
	skip := -1
	if s.noText {
		j := 0
		for k, kind := range s.kinds {
			if kind == fbTypeUtf8 {
				if s.names[k] == ColText {
					skip = j + 2
				}
				j += 3
			} else {
				j += 2
			}
		}
	}
	// Sum the uncompressed sizes first, to decode into one block.
	type span struct{ lo, hi int64 }
	bufs := make([]span, nbuf)
	var total, skipped int64
	for j := range bufs {
		x := bstart + flatbuffers.UOffsetT(16*j)
		off, ln := rb.i64(x), rb.i64(x+8)
		if off < 0 || ln < 0 || off+ln > int64(len(body)) {
			return fmt.Errorf("%s: record batch %d: buffer %d out of the body's bounds", s.path, s.next-1, j)
		}
		bufs[j] = span{off, off + ln}
		if compressed && ln >= 8 {
			u := int64(binary.LittleEndian.Uint64(body[off:]))
			if u == -1 {
				u = ln - 8
			}
			if u < 0 || u > s.limit {
				return fmt.Errorf("%s: record batch %d: buffer %d claims %d bytes, more than the shard holds", s.path, s.next-1, j, u)
			}
			total += u
			if total > s.limit {
				return fmt.Errorf("%s: record batch %d: buffers claim %d bytes, more than the shard holds", s.path, s.next-1, total)
			}
			if j == skip {
				skipped = u
			}
		}
	}
	// Room past the buffers lets the decoder copy 32 bytes at a time up to
	// the end of the last one (see decodeSlack).
	size := total - skipped
	if compressed && total > 0 {
		size += decodeSlack
	}
	var block []byte
	if s.blocks2 != nil {
		block = s.blocks2.get(size)
	} else {
		block = make([]byte, 0, size)
	}
	get := func(j int) ([]byte, error) {
		if j >= len(bufs) {
			return nil, fmt.Errorf("%s: record batch %d: too few buffers", s.path, s.next-1)
		}
		raw := body[bufs[j].lo:bufs[j].hi]
		if len(raw) == 0 {
			return raw, nil
		}
		if !compressed {
			s.aliases = true
			return raw, nil
		}
		if len(raw) < 8 {
			return nil, fmt.Errorf("%s: record batch %d: buffer %d is too short", s.path, s.next-1, j)
		}
		u := int64(binary.LittleEndian.Uint64(raw))
		if u == -1 {
			s.aliases = true
			return raw[8:], nil
		}
		if j == skip {
			// Checked against the limit above.
			return zeros(u), nil
		}
		if s.dec == nil || s.decLimit < s.limit {
			s.dec, s.decLimit = docDecoder(s.limit), s.limit
		}
		// The decoder may write past the buffer's end, into the next
		// buffer's place (decoded after it) or the slack: never past
		// cap(block), which stays the limit (a buffer that decodes to
		// more than it claims is an error below).
		start := len(block)
		out, err := s.dec.DecodeAll(raw[8:], block[start:start:cap(block)])
		if err != nil {
			return nil, fmt.Errorf("%s: record batch %d: buffer %d: %w", s.path, s.next-1, j, err)
		}
		if int64(len(out)) != u || (u > 0 && &out[0] != &block[:start+1][start]) {
			return nil, fmt.Errorf("%s: record batch %d: buffer %d decompressed to %d bytes, header says %d", s.path, s.next-1, j, len(out), u)
		}
		block = block[:start+int(u)]
		return out, nil
	}
	s.cols = map[string]*fastCol{}
	bi := 0
	for k, kind := range s.kinds {
		x := nstart + flatbuffers.UOffsetT(16*k)
		length, nulls := rb.i64(x), rb.i64(x+8)
		if length != rows {
			return fmt.Errorf("%s: record batch %d: column %s has %d rows, batch %d", s.path, s.next-1, s.names[k], length, rows)
		}
		c := &fastCol{}
		v, err := get(bi)
		if err != nil {
			return err
		}
		if nulls > 0 {
			if int64(len(v))*8 < rows {
				return fmt.Errorf("%s: record batch %d: column %s: validity bitmap too short", s.path, s.next-1, s.names[k])
			}
			c.valid = v
		}
		if kind == fbTypeUtf8 {
			if c.offs, err = get(bi + 1); err != nil {
				return err
			}
			if c.data, err = get(bi + 2); err != nil {
				return err
			}
			if int64(len(c.offs)) < 4*(rows+1) {
				return fmt.Errorf("%s: record batch %d: column %s: offsets too short", s.path, s.next-1, s.names[k])
			}
			bi += 3
		} else {
			if c.data, err = get(bi + 1); err != nil {
				return err
			}
			if int64(len(c.data)) < 8*rows {
				return fmt.Errorf("%s: record batch %d: column %s: values too short", s.path, s.next-1, s.names[k])
			}
			bi += 2
		}
		s.cols[s.names[k]] = c
	}
	s.rows, s.row = int(rows), 0
	s.cur = nil
	if s.blocks2 != nil && cap(block) > 0 {
		s.cur = &docBlock{buf: block[:0], left: int(rows)}
	}
	return nil
}

func (c *fastCol) isValid(i int) bool {
	return c.valid == nil || c.valid[i>>3]&(1<<(i&7)) != 0
}

// str returns row i of a utf8 column, pointing into the batch's block.
func (s *fastDocShard) str(name string, i int) (string, error) {
	c := s.cols[name]
	if c == nil || !c.isValid(i) {
		return "", nil
	}
	lo := int32(binary.LittleEndian.Uint32(c.offs[4*i:]))
	hi := int32(binary.LittleEndian.Uint32(c.offs[4*i+4:]))
	if lo < 0 || hi < lo || int(hi) > len(c.data) {
		return "", fmt.Errorf("%s: record batch %d: column %s row %d: offsets out of range", s.path, s.next-1, name, i)
	}
	if hi == lo {
		return "", nil
	}
	// The block is never written after decoding: the string may alias it.
	return unsafe.String(&c.data[lo], int(hi-lo)), nil
}

func (s *fastDocShard) f64(name string, i int) (float64, bool) {
	c := s.cols[name]
	if c == nil || !c.isValid(i) {
		return 0, false
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(c.data[8*i:])), true
}

// Next returns the next document, or io.EOF after the last.
func (s *fastDocShard) Next() (*Document, error) {
	for s.row >= s.rows {
		if s.next >= len(s.blocks) {
			return nil, io.EOF
		}
		if err := s.loadBatch(); err != nil {
			return nil, err
		}
	}
	i := s.row
	s.row++
	d := &Document{}
	if s.cur != nil {
		s.blocks2.add(d, s.cur)
	}
	for _, p := range []struct {
		name string
		dst  *string
	}{{ColID, &d.ID}, {ColSource, &d.Source}, {ColURL, &d.URL}, {ColDate, &d.Date}, {ColLang, &d.Lang}, {ColText, &d.Text}, {ColMeta, &d.Meta}} {
		v, err := s.str(p.name, i)
		if err != nil {
			return nil, err
		}
		*p.dst = v
	}
	d.Source, d.Lang = s.intern(d.Source), s.intern(d.Lang)
	d.LangScore, _ = s.f64(ColLangScore, i)
	d.Quality, d.HasQuality = s.f64(ColQuality, i)
	if r, err := s.str(ColReason, i); err != nil {
		return nil, err
	} else if r != "" {
		d.Drop = &Drop{Reason: r}
		if d.Drop.Value, err = s.str(ColRuleValue, i); err != nil {
			return nil, err
		}
		if d.Drop.DupOf, err = s.str(ColDupOf, i); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Close releases the shard (its decoder and, unless documents' strings may
// point into it, its file buffer are left for the next shard).
func (s *fastDocShard) Close() error {
	s.data, s.cols = nil, nil
	return nil
}

// readFileInto reads the file at path, which should be size bytes, into
// buf when it is big enough.
func readFileInto(path string, size int64, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if int64(cap(buf)) < size+1 {
		buf = make([]byte, 0, size+1)
	}
	// One byte more than expected, to see a file that grew.
	n, err := io.ReadFull(f, buf[:size+1])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:n], nil
}

// blockPool recycles the blocks that fastDocShard decodes record batches
// into, for a caller that says when it is done with each document (the
// tokenize stage: a document's strings point into its batch's block, and
// nothing of it is kept once its tokens are written). Without it every
// batch gets a new, zeroed block: 9 MB per 9 MB of text in
// BenchmarkTokenize, the collector's to find and free.
//
// The reader and the caller's Done may run on different goroutines (the
// stage's OrderedMap reads on one and emits on another): mu guards it all.
type blockPool struct {
	mu    sync.Mutex
	owner map[*Document]*docBlock
	free  [][]byte
}

// docBlock is one batch's block and how many of its documents are not done.
type docBlock struct {
	buf  []byte
	left int
}

func newBlockPool() *blockPool { return &blockPool{owner: map[*Document]*docBlock{}} }

// get returns an empty block of capacity at least n, reused where one is
// free. Its bytes are not zeroed: the decoder overwrites every one used.
func (p *blockPool) get(n int64) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, b := range p.free {
		if int64(cap(b)) >= n {
			p.free[i] = p.free[len(p.free)-1]
			p.free = p.free[:len(p.free)-1]
			return b[:0]
		}
	}
	// A quarter more, so that a block fits the next batches, whose sizes
	// vary by a document or so, instead of each slightly bigger one
	// allocating anew.
	return make([]byte, 0, n+n/4)
}

// add records that d points into b.
func (p *blockPool) add(d *Document, b *docBlock) {
	p.mu.Lock()
	p.owner[d] = b
	p.mu.Unlock()
}

// done records that d is no longer used; its block is free once all of
// its batch's documents are.
func (p *blockPool) done(d *Document) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.owner[d]
	if !ok {
		return
	}
	delete(p.owner, d)
	b.left--
	if b.left == 0 && len(p.free) < 4 {
		p.free = append(p.free, b.buf)
	}
}
