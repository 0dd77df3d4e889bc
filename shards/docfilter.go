package shards

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	flatbuffers "github.com/google/flatbuffers/go"
)

// ErrFilterFallback says FilterDocShard does not handle the shard's layout
// (a file over fastDocMaxFile, or columns other than utf8 and float64):
// the caller filters it another way (Arrow Go's reader).
var ErrFilterFallback = errors.New("document shard layout not handled by the frame-copying filter")

// filterDecodeLimit bounds what one buffer may decompress to when the
// caller gives no shard info: a utf8 buffer cannot be longer (int32
// offsets). With the manifest's info the bound is what the shard records
// (its DataBytes and rows), as for the fast reader: a zstd frame header
// that states a size makes the decoder allocate it up front.
const filterDecodeLimit = 1<<31 - 1

// FilterDocShard writes the rows of the document shard src whose id remove
// does not match to the new file dst, without decoding a row into a
// Document: the same schema and record batches less the removed rows
// (a batch left empty is dropped), byte-identical to writing the kept rows
// in those batches afresh. The text column's frames (docframes.go) that
// hold no removed document are copied as they are, compressed; only the
// frames a removal touches are decompressed, cut and compressed again. A
// shard written before the text was framed (one frame per batch) is
// filtered too, its text decompressed whole.
//
// It returns the new shard's info (Name, Rows, Bytes, DataBytes counted
// as DocBytes counts a document, SHA256) and the number of rows removed.
// When no row is removed, or every row is, it writes nothing: the info
// then has Rows and DataBytes of what is kept. ErrFilterFallback means the
// layout is not one this filter handles. known is the shard's entry in its
// manifest (Rows and DataBytes bound what a buffer may decompress to;
// zero: only the utf8 limit).
func FilterDocShard(src, dst string, known ShardInfo, remove func(id string) bool) (ShardInfo, int64, error) {
	info, removed, _, err := filterDocShardInfo(src, dst, known, remove)
	return info, removed, err
}

func filterDocShard(src, dst string, remove func(id string) bool) (info ShardInfo, removed int64, stats filterStats, err error) {
	return filterDocShardInfo(src, dst, ShardInfo{}, remove)
}

// filterStats counts what a filter did with the text frames.
type filterStats struct {
	copied, compressed int   // frames copied as they were; frames compressed
	whole              int   // batches whose text was decompressed whole
	copiedBytes        int64 // text bytes in the frames copied
	compressedBytes    int64 // text bytes compressed
}

func filterDocShardInfo(src, dst string, known ShardInfo, remove func(id string) bool) (info ShardInfo, removed int64, stats filterStats, err error) {
	st, err := os.Stat(src)
	if err != nil {
		return info, 0, stats, err
	}
	if st.Size() > fastDocMaxFile {
		return info, 0, stats, ErrFilterFallback
	}
	s, err := openFastDocShard(src, ShardInfo{Bytes: st.Size()}, false, nil)
	if errors.Is(err, errNotFast) {
		return info, 0, stats, ErrFilterFallback
	}
	if err != nil {
		return info, 0, stats, err
	}
	s.limit = filterDecodeLimit
	if known.DataBytes > 0 || known.Rows > 0 {
		s.limit = min(filterDecodeLimit, known.DataBytes+16*known.Rows+1<<20)
	}
	f := &docFilter{s: s, remove: remove}
	defer func() { putDocDecoder(s.dec, s.decLimit) }()
	defer func() {
		if r := recover(); r != nil {
			info, removed, stats, err = ShardInfo{}, 0, filterStats{}, fmt.Errorf("%s: corrupt Arrow data: %v", src, r)
		}
	}()
	if err := f.columns(); err != nil {
		return info, 0, stats, err
	}
	// Pass 1: which rows stay, and their bytes.
	for b := range s.blocks {
		keep, rows, data, err := f.keep(b)
		if err != nil {
			return info, 0, stats, err
		}
		f.keeps = append(f.keeps, keep)
		info.Rows += rows
		info.DataBytes += data
		removed += int64(len(keep)) - rows
	}
	if removed == 0 || info.Rows == 0 {
		return info, removed, stats, nil
	}
	// Pass 2: the kept rows, batch by batch. The schema (field flags and
	// metadata as written) comes from the footer, through Arrow Go's
	// reader, which reads nothing else here.
	fh, err := os.Open(src)
	if err != nil {
		return info, 0, stats, err
	}
	r, err := ipc.NewFileReader(fh, ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		fh.Close()
		return info, 0, stats, fmt.Errorf("%s: not a readable Arrow IPC file: %w", src, err)
	}
	schema := r.Schema()
	r.Close()
	fh.Close()
	fields, ok := handFields(schema)
	if !ok || len(fields) != len(s.kinds) {
		return info, 0, stats, ErrFilterFallback
	}
	out, err := createHandIPCFile(dst, schema, fields, docZstd())
	if err != nil {
		return info, 0, stats, err
	}
	defer func() {
		if out != nil {
			out.Abort()
		}
	}()
	f.h = out.h
	for b := range s.blocks {
		if err := f.writeBatch(b); err != nil {
			return info, 0, stats, fmt.Errorf("%s: record batch %d: %w", src, b, err)
		}
		out.rows += f.kept
	}
	written, err := out.Commit()
	out = nil
	if err != nil {
		return info, 0, stats, err
	}
	if written.Rows != info.Rows {
		return info, 0, stats, fmt.Errorf("%s: internal error: wrote %d rows, kept %d", dst, written.Rows, info.Rows)
	}
	written.DataBytes = info.DataBytes
	return written, removed, f.stats, nil
}

// docFilter is one FilterDocShard call's state.
type docFilter struct {
	s      *fastDocShard
	remove func(string) bool
	h      *handIPC
	// first[k] is column k's first buffer in a batch.
	first         []int
	idCol         int
	textCol       int
	counted, drop []int // columns DocBytes counts; those a drop adds
	reasonCol     int
	keeps         [][]bool
	kept          int64
	stats         filterStats

	// Per batch, reused.
	batch   filterBatch
	cols    []rawColumn
	idx     []int // old row of each kept row
	scratch []byte
	spans   []frameSpan
	frames  []zstdFrame
	decoded map[int][]byte
}

// rawColumn is one column of a batch as the writer takes it: validity
// bitmap (nil without nulls), int32 offsets from 0 (utf8), and data.
type rawColumn struct {
	nulls int64
	valid []byte
	offs  []byte
	data  []byte
}

// filterBatch is one record batch's layout in the file.
type filterBatch struct {
	rows       int
	compressed bool
	body       []byte
	nodes      []fbNode
	bufs       [][2]int64
}

// columns finds the columns by name.
func (f *docFilter) columns() error {
	s := f.s
	col := func(name string) int { return slices.Index(s.names, name) }
	f.idCol, f.reasonCol = col(ColID), col(ColReason)
	if f.idCol < 0 || s.kinds[f.idCol] != fbTypeUtf8 {
		return fmt.Errorf("%s: not a document shard: no utf8 %q column", s.path, ColID)
	}
	f.textCol = -1
	if t := col(ColText); t >= 0 && s.kinds[t] == fbTypeUtf8 {
		f.textCol = t
	}
	for _, name := range []string{ColID, ColSource, ColURL, ColDate, ColLang, ColText, ColMeta} {
		if c := col(name); c >= 0 {
			if s.kinds[c] != fbTypeUtf8 {
				return fmt.Errorf("%s: column %q is not utf8", s.path, name)
			}
			f.counted = append(f.counted, c)
		}
	}
	if f.reasonCol >= 0 {
		for _, name := range []string{ColReason, ColRuleValue, ColDupOf} {
			if c := col(name); c >= 0 {
				if s.kinds[c] != fbTypeUtf8 {
					return fmt.Errorf("%s: column %q is not utf8", s.path, name)
				}
				f.drop = append(f.drop, c)
			}
		}
	}
	n := 0
	for _, k := range s.kinds {
		f.first = append(f.first, n)
		if k == fbTypeUtf8 {
			n += 3
		} else {
			n += 2
		}
	}
	return nil
}

// parse reads record batch b's layout.
func (f *docFilter) parse(b int) error {
	s := f.s
	blk := s.blocks[b]
	meta := s.data[blk.offset : blk.offset+int64(blk.metaLen)]
	if binary.LittleEndian.Uint32(meta) == 0xFFFFFFFF {
		meta = meta[8:]
	} else {
		meta = meta[4:]
	}
	msg := fbRoot(meta)
	if msg.t.GetByteSlot(6, 0) != fbHeaderRecordBatch {
		return fmt.Errorf("%s: block %d is not a record batch", s.path, b)
	}
	rb, ok := msg.table(2)
	if !ok {
		return fmt.Errorf("%s: record batch %d has no header", s.path, b)
	}
	fb := &f.batch
	fb.body = s.data[blk.offset+int64(blk.metaLen) : blk.offset+int64(blk.metaLen)+blk.bodyLen]
	rows := rb.t.GetInt64Slot(4, 0)
	if rows < 0 || rows > int64(len(s.data))*8 {
		return fmt.Errorf("%s: record batch %d claims %d rows", s.path, b, rows)
	}
	fb.rows = int(rows)
	fb.compressed = false
	if c, ok := rb.table(3); ok {
		if c.t.GetInt8Slot(4, 0) != fbCodecZstd {
			return ErrFilterFallback
		}
		fb.compressed = true
	}
	nstart, nn := rb.vec(1, 16)
	bstart, nbuf := rb.vec(2, 16)
	if nn < 0 || nbuf < 0 {
		return fmt.Errorf("%s: record batch %d: corrupt node or buffer list", s.path, b)
	}
	if nn != len(s.kinds) || nbuf < f.first[len(f.first)-1]+2 {
		return fmt.Errorf("%s: record batch %d has %d columns and %d buffers, schema %d columns", s.path, b, nn, nbuf, len(s.kinds))
	}
	fb.nodes, fb.bufs = fb.nodes[:0], fb.bufs[:0]
	for k := 0; k < nn; k++ {
		x := nstart + flatbuffers.UOffsetT(16*k)
		n := fbNode{length: rb.i64(x), nulls: rb.i64(x + 8)}
		if n.length != rows || n.nulls < 0 || n.nulls > rows {
			return fmt.Errorf("%s: record batch %d: column %s has %d rows (%d null), batch %d", s.path, b, s.names[k], n.length, n.nulls, rows)
		}
		fb.nodes = append(fb.nodes, n)
	}
	for j := 0; j < nbuf; j++ {
		x := bstart + flatbuffers.UOffsetT(16*j)
		off, ln := rb.i64(x), rb.i64(x+8)
		if off < 0 || ln < 0 || off+ln > int64(len(fb.body)) {
			return fmt.Errorf("%s: record batch %d: buffer %d out of the body's bounds", s.path, b, j)
		}
		fb.bufs = append(fb.bufs, [2]int64{off, off + ln})
	}
	return nil
}

// raw returns buffer j of the current batch as stored (prefix included).
func (f *docFilter) raw(j int) []byte {
	return f.batch.body[f.batch.bufs[j][0]:f.batch.bufs[j][1]]
}

// buf returns buffer j of the current batch, decompressed.
func (f *docFilter) buf(b, j int) ([]byte, error) {
	raw := f.raw(j)
	if len(raw) == 0 || !f.batch.compressed {
		return raw, nil
	}
	if len(raw) < 8 {
		return nil, fmt.Errorf("%s: record batch %d: buffer %d is too short", f.s.path, b, j)
	}
	u := int64(binary.LittleEndian.Uint64(raw))
	if u == -1 {
		return raw[8:], nil
	}
	return f.decode(b, j, raw[8:], u)
}

// decode decompresses p (one or more zstd frames), which must give want
// bytes.
func (f *docFilter) decode(b, j int, p []byte, want int64) ([]byte, error) {
	s := f.s
	if want < 0 || want > s.limit {
		return nil, fmt.Errorf("%s: record batch %d: buffer %d claims %d bytes", s.path, b, j, want)
	}
	if s.dec == nil {
		s.dec, s.decLimit = getDocDecoder(s.limit), s.limit
	}
	out, err := s.dec.DecodeAll(p, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: record batch %d: buffer %d: %w", s.path, b, j, err)
	}
	if int64(len(out)) != want {
		return nil, fmt.Errorf("%s: record batch %d: buffer %d decompressed to %d bytes, header says %d", s.path, b, j, len(out), want)
	}
	return out, nil
}

// strCol is a utf8 column's validity, offsets and (when asked for) data.
type strCol struct {
	valid []byte
	offs  []byte
	data  []byte
}

func (c *strCol) isNull(i int) bool { return c.valid != nil && c.valid[i>>3]&(1<<(i&7)) == 0 }

func (c *strCol) off(i int) int64 { return int64(int32(binary.LittleEndian.Uint32(c.offs[4*i:]))) }

// length is row i's byte length (0 for a null).
func (c *strCol) length(i int) int64 {
	if c.isNull(i) {
		return 0
	}
	return c.off(i+1) - c.off(i)
}

// value is row i's bytes (nil for a null).
func (c *strCol) value(i int) []byte {
	if c.isNull(i) {
		return nil
	}
	return c.data[c.off(i):c.off(i+1)]
}

// str decodes utf8 column k of the current batch, its data when data is
// set, and checks its offsets.
func (f *docFilter) str(b, k int, data bool) (strCol, error) {
	var c strCol
	j := f.first[k]
	var err error
	if f.batch.nodes[k].nulls > 0 {
		if c.valid, err = f.buf(b, j); err != nil {
			return c, err
		}
		if len(c.valid)*8 < f.batch.rows {
			return c, fmt.Errorf("%s: record batch %d: column %s: validity bitmap too short", f.s.path, b, f.s.names[k])
		}
	}
	if c.offs, err = f.buf(b, j+1); err != nil {
		return c, err
	}
	rows := f.batch.rows
	if len(c.offs) < 4*(rows+1) {
		if rows == 0 {
			c.offs = []byte{0, 0, 0, 0}
		} else {
			return c, fmt.Errorf("%s: record batch %d: column %s: offsets too short", f.s.path, b, f.s.names[k])
		}
	}
	var n int64
	if data {
		if c.data, err = f.buf(b, j+2); err != nil {
			return c, err
		}
		n = int64(len(c.data))
	} else {
		n = f.dataLen(b, j+2)
	}
	prev := c.off(0)
	if prev < 0 {
		return c, fmt.Errorf("%s: record batch %d: column %s: offsets out of range", f.s.path, b, f.s.names[k])
	}
	for i := 1; i <= rows; i++ {
		o := c.off(i)
		if o < prev || o > n {
			return c, fmt.Errorf("%s: record batch %d: column %s row %d: offsets out of range", f.s.path, b, f.s.names[k], i-1)
		}
		prev = o
	}
	return c, nil
}

// dataLen is buffer j's uncompressed length, from its prefix.
func (f *docFilter) dataLen(b, j int) int64 {
	raw := f.raw(j)
	if !f.batch.compressed || len(raw) < 8 {
		return int64(len(raw))
	}
	if u := int64(binary.LittleEndian.Uint64(raw)); u != -1 {
		return u
	}
	return int64(len(raw)) - 8
}

// keep returns which rows of batch b stay, how many, and their DocBytes.
func (f *docFilter) keep(b int) ([]bool, int64, int64, error) {
	if err := f.parse(b); err != nil {
		return nil, 0, 0, err
	}
	ids, err := f.str(b, f.idCol, true)
	if err != nil {
		return nil, 0, 0, err
	}
	rows := f.batch.rows
	keep := make([]bool, rows)
	var kept int64
	for i := range keep {
		keep[i] = !f.remove(string(ids.value(i)))
		if keep[i] {
			kept++
		}
	}
	var data int64
	if kept == 0 {
		return keep, 0, 0, nil
	}
	counted := make([]strCol, len(f.counted))
	for n, k := range f.counted {
		if counted[n], err = f.str(b, k, false); err != nil {
			return nil, 0, 0, err
		}
	}
	var reason strCol
	drops := make([]strCol, len(f.drop))
	if f.reasonCol >= 0 {
		if reason, err = f.str(b, f.reasonCol, false); err != nil {
			return nil, 0, 0, err
		}
		for n, k := range f.drop {
			if drops[n], err = f.str(b, k, false); err != nil {
				return nil, 0, 0, err
			}
		}
	}
	for i, k := range keep {
		if !k {
			continue
		}
		data += 16
		for n := range counted {
			data += counted[n].length(i)
		}
		if f.reasonCol >= 0 && reason.length(i) > 0 {
			for n := range drops {
				data += drops[n].length(i)
			}
		}
	}
	return keep, kept, data, nil
}

// writeBatch writes batch b's kept rows as one record batch (nothing when
// none is kept).
func (f *docFilter) writeBatch(b int) error {
	keep := f.keeps[b]
	f.idx = f.idx[:0]
	for i, k := range keep {
		if k {
			f.idx = append(f.idx, i)
		}
	}
	f.kept = int64(len(f.idx))
	if f.kept == 0 {
		return nil
	}
	if err := f.parse(b); err != nil {
		return err
	}
	if f.batch.rows != len(keep) {
		return fmt.Errorf("%d rows, first read %d", f.batch.rows, len(keep))
	}
	rows := len(f.idx)
	f.cols = f.cols[:0]
	var textOld strCol
	for k, kind := range f.s.kinds {
		j := f.first[k]
		var c rawColumn
		var valid []byte
		if f.batch.nodes[k].nulls > 0 {
			v, err := f.buf(b, j)
			if err != nil {
				return err
			}
			if len(v)*8 < f.batch.rows {
				return fmt.Errorf("column %s: validity bitmap too short", f.s.names[k])
			}
			valid = v
		}
		if valid != nil {
			bm := make([]byte, bitutil.BytesForBits(int64(rows)))
			for n, i := range f.idx {
				if valid[i>>3]&(1<<(i&7)) != 0 {
					bm[n>>3] |= 1 << (n & 7)
				} else {
					c.nulls++
				}
			}
			if c.nulls > 0 {
				c.valid = bm
			}
		}
		if kind == fbTypeUtf8 {
			text := k == f.textCol && f.h.textCol == k
			sc, err := f.str(b, k, !text)
			if err != nil {
				return err
			}
			offs := make([]byte, 4*(rows+1))
			var data []byte
			if !text {
				data = make([]byte, 0, len(sc.data))
			}
			var pos int64
			for n, i := range f.idx {
				lo, hi := sc.off(i), sc.off(i+1)
				if !text {
					data = append(data, sc.data[lo:hi]...)
				}
				pos += hi - lo
				binary.LittleEndian.PutUint32(offs[4*(n+1):], uint32(pos))
			}
			if pos > 1<<31-1 {
				return fmt.Errorf("column %s: %d bytes, more than a utf8 column holds", f.s.names[k], pos)
			}
			c.offs, c.data = offs, data
			if text {
				textOld = sc
			}
		} else {
			v, err := f.buf(b, j+1)
			if err != nil {
				return err
			}
			if len(v) < 8*f.batch.rows {
				return fmt.Errorf("column %s: values too short", f.s.names[k])
			}
			data := make([]byte, 0, 8*rows)
			for _, i := range f.idx {
				data = append(data, v[8*i:8*i+8]...)
			}
			c.data = data
		}
		f.cols = append(f.cols, c)
	}
	h := f.h
	w := &h.w
	w.resetBatch()
	for k, c := range f.cols {
		w.nodeNulls(int64(rows), c.nulls)
		w.buffer(c.valid)
		if f.s.kinds[k] == fbTypeUtf8 {
			w.buffer(c.offs)
			if k == h.textCol && k == f.textCol {
				if err := f.text(b, textOld, c.offs); err != nil {
					return err
				}
				continue
			}
		}
		w.buffer(c.data)
	}
	return w.flushBatch(int64(rows))
}

// text writes the kept rows' text buffer: the old batch's text is
// textOld (data not decoded), the new offsets newOffs. Frames whose rows
// all stay are copied; the others are built from the old frames' text and
// compressed.
func (f *docFilter) text(b int, textOld strCol, newOffs []byte) error {
	w := &f.h.w
	j := f.first[f.textCol] + 2
	raw := f.raw(j)
	ids, err := f.str(b, f.idCol, true)
	if err != nil {
		return err
	}
	rows := len(f.idx)
	// newEnd(n) is where row n's text ends (newEnd(-1) is 0).
	newEnd := func(n int) int64 { return int64(binary.LittleEndian.Uint32(newOffs[4*(n+1):])) }
	total := newEnd(rows - 1)
	f.spans = appendTextFrames(f.spans[:0], rows, func(n int) []byte { return ids.value(f.idx[n]) }, newEnd)
	nNew := len(f.spans)

	// The old frames, where the buffer is compressed as the rule cuts it.
	framed := f.batch.compressed && len(raw) >= 8 && int64(binary.LittleEndian.Uint64(raw)) != -1 && total > 0
	var oldSpans []frameSpan
	if framed {
		base := textOld.off(0)
		f.spans = appendTextFrames(f.spans, f.batch.rows, ids.value, func(i int) int64 { return textOld.off(i+1) - base })
		oldSpans = f.spans[nNew:]
		f.frames, err = walkZstdFrames(raw[8:], f.frames[:0])
		framed = err == nil && len(f.frames) == len(oldSpans) && base == 0 &&
			int64(binary.LittleEndian.Uint64(raw)) == textOld.off(f.batch.rows)
		start := int64(0)
		for k := 0; framed && k < len(oldSpans); k++ {
			// A frame that states its size (EncodeAll's do from 256
			// bytes on) must be the size of its rows' text. A buffer
			// written before the framing holds one frame, which the rule
			// cuts the same only when it cuts one.
			if c := f.frames[k].content; c >= 0 && c != oldSpans[k].end-start {
				framed = false
			}
			start = oldSpans[k].end
		}
	}
	if !framed {
		// One frame, stored raw or uncompressed: the whole text, written
		// as a fresh write would.
		old, err := f.buf(b, j)
		if err != nil {
			return err
		}
		f.stats.whole++
		data := make([]byte, 0, total)
		for _, i := range f.idx {
			data = append(data, old[textOld.off(i):textOld.off(i+1)]...)
		}
		ends := make([]int64, nNew)
		for k, s := range f.spans[:nNew] {
			ends[k] = s.end
		}
		w.bufferFrames(data, ends)
		return nil
	}
	newSpans := f.spans[:nNew]
	clear(f.decoded)
	if f.decoded == nil {
		f.decoded = map[int][]byte{}
	}
	// oldText returns old row i's text, decompressing its frame once.
	oldText := func(i int) ([]byte, error) {
		if textOld.off(i+1) == textOld.off(i) {
			return nil, nil
		}
		k, _ := slices.BinarySearchFunc(oldSpans, i, func(s frameSpan, i int) int {
			if s.hi <= i {
				return -1
			}
			if s.lo > i {
				return 1
			}
			return 0
		})
		if k >= len(oldSpans) || oldSpans[k].lo > i {
			return nil, fmt.Errorf("text of row %d in no frame", i)
		}
		start := int64(0)
		if k > 0 {
			start = oldSpans[k-1].end
		}
		d, ok := f.decoded[k]
		if !ok {
			fr := f.frames[k]
			if d, err = f.decode(b, j, raw[8+fr.lo:8+fr.hi], oldSpans[k].end-start); err != nil {
				return nil, err
			}
			f.decoded[k] = d
		}
		return d[textOld.off(i)-start : textOld.off(i+1)-start], nil
	}
	off := int64(len(w.body))
	w.body = binary.LittleEndian.AppendUint64(w.body, uint64(total))
	enc := w.enc
	for _, s := range newSpans {
		lo, hi := f.idx[s.lo], f.idx[s.hi-1]+1
		if hi-lo == s.hi-s.lo {
			k, ok := slices.BinarySearchFunc(oldSpans, lo, func(o frameSpan, lo int) int { return o.lo - lo })
			if ok && oldSpans[k].hi == hi {
				fr := f.frames[k]
				w.body = append(w.body, raw[8+fr.lo:8+fr.hi]...)
				f.stats.copied++
				f.stats.copiedBytes += s.end - newEnd(s.lo-1)
				continue
			}
		}
		f.scratch = f.scratch[:0]
		for n := s.lo; n < s.hi; n++ {
			t, err := oldText(f.idx[n])
			if err != nil {
				return err
			}
			f.scratch = append(f.scratch, t...)
		}
		w.body = enc.EncodeAll(f.scratch, w.body)
		f.stats.compressed++
		f.stats.compressedBytes += int64(len(f.scratch))
	}
	if w.rawIfLarger && int64(len(w.body))-off-8 >= total {
		// Not smaller than the text: stored as it is, as a fresh write
		// stores it.
		data := make([]byte, 0, total)
		for _, i := range f.idx {
			t, err := oldText(i)
			if err != nil {
				return err
			}
			data = append(data, t...)
		}
		w.body = binary.LittleEndian.AppendUint64(w.body[:off], ^uint64(0))
		w.body = append(w.body, data...)
	}
	n := int64(len(w.body)) - off
	for len(w.body)%8 != 0 {
		w.body = append(w.body, 0)
	}
	w.buffers = append(w.buffers, fbBuffer{offset: off, length: n})
	return nil
}
