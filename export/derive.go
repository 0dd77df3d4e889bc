package export

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/smelt-dev/smelt/shards"
)

// Deriving a file (Reuse.Removed): the new input shard is the earlier
// one less some documents, so the new JSONL or Parquet documents file is
// the earlier file less them. The exporter walks the earlier file's
// blocks (page groups) in order and feeds them through the same cut rule
// a fresh export applies:
//
//   - a block that holds no removed document, met when the block being
//     built is empty, is copied byte for byte: starting from an empty
//     block, its documents reach the same cut (the last one's id, or the
//     size cap) as they did in the earlier export, so a fresh export
//     writes these very bytes;
//   - any other block's documents are decoded from the earlier file
//     (JSONL: its lines; Parquet: its nine pages), the removed ones left
//     out, and the rest added one by one as a fresh export adds them
//     (a removed cut document merges its block with the next).
//
// Finding which documents a block holds decompresses it (JSONL) or its
// id page (Parquet); the input shard is never opened. The kept count must
// be the new shard's row count, or the file is exported from the shard.

// errDerive marks an earlier file that a new file cannot be derived from:
// the exporter exports that file from its input shard instead.
var errDerive = errors.New("export: cannot derive from the earlier file")

// docsReadFromShards counts the documents exports read from document
// shards (forEachDoc), for tests.
var docsReadFromShards atomic.Int64

// DocsReadFromShards returns how many documents exports have read from
// document shards in this process so far: a derived export
// (Reuse.Removed) reads none.
func DocsReadFromShards() int64 { return docsReadFromShards.Load() }

// readVerified reads an earlier export's file whole and checks it against
// its record (size and sha256).
func readVerified(path string, fi FileInfo) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() != fi.Bytes {
		return nil, fmt.Errorf("%s: %d bytes, the earlier export recorded %d", path, st.Size(), fi.Bytes)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != fi.SHA256 {
		return nil, fmt.Errorf("%s: sha256 differs from the earlier export's record", path)
	}
	return data, nil
}

// verifyFile checks that the file at path is the one its record names:
// its size and sha256 (read in a stream, not held in memory).
func verifyFile(path string, fi FileInfo) error {
	sum, n, err := shards.FileSHA256(path)
	if err != nil {
		return err
	}
	if n != fi.Bytes {
		return fmt.Errorf("%s: %d bytes, the earlier export recorded %d", path, n, fi.Bytes)
	}
	if sum != fi.SHA256 {
		return fmt.Errorf("%s: sha256 differs from the earlier export's record", path)
	}
	return nil
}

// checkCounts checks a derived file's counts: the earlier file must hold
// as many documents as the earlier export's input shard (it is that
// shard's file), and keep as many as the new shard holds.
func checkCounts(held, earlierRows, kept, rows int64) error {
	if held != earlierRows {
		return fmt.Errorf("%w: it holds %d documents, its input shard held %d", errDerive, held, earlierRows)
	}
	if kept != rows {
		return fmt.Errorf("%w: it keeps %d documents, the new shard holds %d", errDerive, kept, rows)
	}
	return nil
}

// blockWalker decodes an earlier JSONL file's blocks one at a time.
type blockWalker struct {
	enc   *blockEncoder
	zdec  *zstd.Decoder
	gz    gzip.Reader
	gzHdr []byte
	out   []byte
	buf   bytes.Buffer
	zeros []byte
}

func newBlockWalker(enc *blockEncoder) (*blockWalker, error) {
	w := &blockWalker{enc: enc}
	if enc.gz != nil {
		empty, err := enc.encode(nil)
		if err != nil {
			return nil, err
		}
		const gzipHeader = 10 // RFC 1952, with no optional fields
		w.gzHdr = bytes.Clone(empty[:gzipHeader])
		return w, nil
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxEarlierBlock))
	if err != nil {
		return nil, fmt.Errorf("export: zstd: %w", err)
	}
	w.zdec = dec
	return w, nil
}

func (w *blockWalker) close() {
	if w.zdec != nil {
		w.zdec.Close()
	}
}

// next decodes the block at data[off:]: it returns the block's end, its
// uncompressed bytes (valid until the next call) and a function that
// reports whether its compressed bytes start as this exporter's encoder
// starts a block of that size (else the block is decoded but never
// copied; the check costs an encode, so it runs only for a block about
// to be copied).
func (w *blockWalker) next(data []byte, off int) (end int, content []byte, ours func() bool, err error) {
	if w.zdec == nil {
		br := bytes.NewReader(data[off:])
		if err := w.gz.Reset(br); err != nil {
			return 0, nil, nil, err
		}
		w.gz.Multistream(false)
		w.buf.Reset()
		if _, err := io.Copy(&w.buf, io.LimitReader(&w.gz, maxEarlierBlock+1)); err != nil {
			return 0, nil, nil, err
		}
		if w.buf.Len() > maxEarlierBlock {
			return 0, nil, nil, fmt.Errorf("a member of over %d bytes", maxEarlierBlock)
		}
		ok := bytes.HasPrefix(data[off:], w.gzHdr)
		return len(data) - br.Len(), w.buf.Bytes(), func() bool { return ok }, nil
	}
	n, hdr, err := zstdFrameEnd(data[off:])
	if err != nil {
		return 0, nil, nil, err
	}
	w.out, err = w.zdec.DecodeAll(data[off:off+n], w.out[:0])
	if err != nil {
		return 0, nil, nil, err
	}
	return off + n, w.out, func() bool { return w.zstdHeaderOurs(data[off:off+hdr], len(w.out)) }, nil
}

// zstdHeaderOurs reports whether hdr is the frame header the encoder
// writes for size bytes of content (the header depends on nothing else).
func (w *blockWalker) zstdHeaderOurs(hdr []byte, size int) bool {
	if len(w.zeros) < size {
		w.zeros = make([]byte, size)
	}
	want, err := w.enc.encode(w.zeros[:size])
	return err == nil && len(want) >= len(hdr) && bytes.Equal(want[:len(hdr)], hdr)
}

// lineID returns the id of a JSONL line (a DolmaDoc, whose first field is
// the id), without copying it when it holds no escape.
func lineID(line []byte) ([]byte, error) {
	const pre = `{"id":"`
	if !bytes.HasPrefix(line, []byte(pre)) {
		return nil, errors.New("a line that does not start with its id")
	}
	rest := line[len(pre):]
	escaped := false
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			if !escaped {
				return rest[:i], nil
			}
			var s string
			if err := json.Unmarshal(line[len(pre)-1:len(pre)+i+1], &s); err != nil {
				return nil, err
			}
			return []byte(s), nil
		}
	}
	return nil, errors.New("a line whose id does not end")
}

// derive writes the JSONL file of a shard derived from the earlier file
// data (see the top of this file). A file that does not fit returns an
// error wrapping errDerive.
func (e *jsonlExporter) derive(ctx context.Context, w io.Writer, data []byte, earlierRows int64, info shards.ShardInfo, fi *FileInfo) error {
	removed := e.reuse.removed
	bw, err := newBlockWalker(e.enc)
	if err != nil {
		return err
	}
	defer bw.close()
	var block []byte
	blocks := 0
	var kept, held int64
	flush := func() error {
		b, err := e.enc.encode(block)
		if err != nil {
			return err
		}
		e.encoded++
		blocks++
		block = block[:0]
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		return nil
	}
	type docLine struct {
		id   []byte
		line []byte
	}
	var lines []docLine
	for off := 0; off < len(data); {
		if err := ctx.Err(); err != nil {
			return err
		}
		end, content, ours, err := bw.next(data, off)
		if err != nil {
			return fmt.Errorf("%w: offset %d: %v", errDerive, off, err)
		}
		if len(content) > 0 && content[len(content)-1] != '\n' {
			return fmt.Errorf("%w: offset %d: a block that does not end a line", errDerive, off)
		}
		lines = lines[:0]
		touched := false
		// cuts counts the lines after which a fresh export would end
		// the block, starting it empty; copying needs exactly one, the
		// last (or none, in the file's last block).
		cuts, size, lastCut := 0, 0, false
		for rest := content; len(rest) > 0; {
			i := bytes.IndexByte(rest, '\n')
			line := rest[:i+1]
			rest = rest[i+1:]
			id, err := lineID(line)
			if err != nil {
				return fmt.Errorf("%w: offset %d: %v", errDerive, off, err)
			}
			if removed[string(id)] {
				touched = true
			}
			size += len(line)
			lastCut = jsonlCutAfter(id, jsonlBlockDocs) || size >= jsonlBlockCap
			if lastCut {
				cuts++
			}
			lines = append(lines, docLine{id, line})
		}
		held += int64(len(lines))
		fits := len(lines) > 0 && (lastCut && cuts == 1 || cuts == 0 && end == len(data))
		if len(block) == 0 && !touched && fits && ours() {
			if _, err := w.Write(data[off:end]); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			e.copied++
			blocks++
			kept += int64(len(lines))
			off = end
			continue
		}
		for _, l := range lines {
			if removed[string(l.id)] {
				continue
			}
			block = append(block, l.line...)
			kept++
			if jsonlCutAfter(l.id, jsonlBlockDocs) || len(block) >= jsonlBlockCap {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		off = end
	}
	if err := checkCounts(held, earlierRows, kept, info.Rows); err != nil {
		return err
	}
	fi.Docs = kept
	if len(block) > 0 || blocks == 0 {
		return flush()
	}
	return nil
}

// deriveDocs writes the Parquet documents file of a shard derived from
// the earlier file's page groups (see the top of this file). A file that
// does not fit returns an error wrapping errDerive.
func (e *parquetExporter) deriveDocs(ctx context.Context, w io.Writer, groups []pageGroup, earlierRows int64, info shards.ShardInfo, fi *FileInfo) error {
	removed := e.reuse.removed
	codec := parquetCodec(e.opt.Compression)
	d, err := newDocParquet(w, codec, e.docCodec, e.opt.RowGroupBytes, nil, e.docPrev)
	if err != nil {
		return err
	}
	e.docPrev = d
	var gd groupDecoder
	var kept, held int64
	for _, g := range groups {
		held += int64(g.rows)
	}
	if held != earlierRows {
		// Checked first: it also costs nothing.
		return checkCounts(held, earlierRows, 0, 0)
	}
	for gi, g := range groups {
		if err := ctx.Err(); err != nil {
			return err
		}
		touched, cuts, lastCut := false, 0, false
		for ids, i := g.ids, 0; i < g.rows; i++ {
			l := binary.LittleEndian.Uint32(ids) // checked by readPageGroups
			id := ids[4 : 4+l]
			ids = ids[4+l:]
			if removed[string(id)] {
				touched = true
			}
			lastCut = docPageCut(string(id))
			if lastCut {
				cuts++
			}
		}
		if !touched && d.rows == 0 && g.rows > 0 {
			gb, err := gd.groupBytes(g, e.docCodec)
			if err != nil {
				return fmt.Errorf("%w: page group %d: %v", errDerive, gi, err)
			}
			// A group copied must end where a fresh export ends it: at
			// its last id (and no earlier one), at the size cap, or at
			// the end of the file.
			if lastCut && cuts == 1 || cuts == 0 && (gb >= docPageMaxBytes || gi == len(groups)-1) {
				if err := d.copyGroup(g, gb); err != nil {
					return err
				}
				kept += int64(g.rows)
				continue
			}
		}
		docs, err := gd.decode(g, e.docCodec)
		if err != nil {
			return fmt.Errorf("%w: page group %d: %v", errDerive, gi, err)
		}
		for i := range docs {
			if removed[docs[i].ID] {
				continue
			}
			if err := d.add(&docs[i]); err != nil {
				return err
			}
			kept++
		}
	}
	if err := checkCounts(held, earlierRows, kept, info.Rows); err != nil {
		return err
	}
	fi.Docs = kept
	return d.close()
}

// groupDecoder decodes the pages of documents page groups.
type groupDecoder struct {
	bufs [docColumns][]byte
	docs []shards.Document
}

// page decompresses column c's page of g into the decoder's buffer.
func (gd *groupDecoder) page(g pageGroup, c int, pc *pageCodec) ([]byte, error) {
	b := g.pages[c].b
	h, err := parsePageHeader(b)
	if err != nil || h.dict || h.enc != encPlain || int(h.nvals) != g.rows || h.n+int(h.compressed) != len(b) {
		return nil, fmt.Errorf("column %d: not a page this exporter writes", c)
	}
	gd.bufs[c], err = pc.decompress(gd.bufs[c], b[h.n:], int(h.uncompressed))
	if err != nil {
		return nil, fmt.Errorf("column %d: %w", c, err)
	}
	return gd.bufs[c], nil
}

// levels parses a page's definition levels (RLE runs of 0 or 1, as
// appendLevels writes them) for rows values: the flags and the rest of
// the page.
func levels(p []byte, rows int, dst []bool) ([]bool, []byte, error) {
	if len(p) < 4 {
		return nil, nil, errors.New("levels cut short")
	}
	n := binary.LittleEndian.Uint32(p)
	if uint64(n) > uint64(len(p)-4) {
		return nil, nil, errors.New("levels cut short")
	}
	runs, rest := p[4:4+n], p[4+n:]
	dst = dst[:0]
	for len(runs) > 0 {
		h, k := binary.Uvarint(runs)
		if k <= 0 || h&1 != 0 || k >= len(runs) || runs[k] > 1 || h>>1 > uint64(rows-len(dst)) {
			return nil, nil, errors.New("levels not written by this exporter")
		}
		for i := uint64(0); i < h>>1; i++ {
			dst = append(dst, runs[k] == 1)
		}
		runs = runs[k+1:]
	}
	if len(dst) != rows {
		return nil, nil, fmt.Errorf("%d levels for %d rows", len(dst), rows)
	}
	return dst, rest, nil
}

// groupBytes returns the shards.DocBytes of a group's documents from its
// pages' headers (the PLAIN sizes of the string columns) and its metadata
// page, without decompressing the text.
func (gd *groupDecoder) groupBytes(g pageGroup, pc *pageCodec) (int64, error) {
	n := int64(16 * g.rows)
	for c := 0; c < 6; c++ { // id, source, url, date, text, lang
		h, err := parsePageHeader(g.pages[c].b)
		if err != nil {
			return 0, err
		}
		n += int64(h.uncompressed) - int64(4*g.rows)
	}
	meta, err := gd.page(g, 8, pc)
	if err != nil {
		return 0, err
	}
	def, vals, err := levels(meta, g.rows, nil)
	if err != nil {
		return 0, err
	}
	for _, ok := range def {
		if ok {
			n -= 4
		}
	}
	return n + int64(len(vals)), nil
}

// decode returns a group's documents, decoded from its pages.
func (gd *groupDecoder) decode(g pageGroup, pc *pageCodec) ([]shards.Document, error) {
	rows := g.rows
	if cap(gd.docs) < rows {
		gd.docs = make([]shards.Document, rows)
	}
	docs := gd.docs[:rows]
	clear(docs)
	bad := func(c int) error { return fmt.Errorf("column %d: values not written by this exporter", c) }
	for c := 0; c < 6; c++ {
		p, err := gd.page(g, c, pc)
		if err != nil {
			return nil, err
		}
		for i := range docs {
			if len(p) < 4 || uint64(binary.LittleEndian.Uint32(p)) > uint64(len(p)-4) {
				return nil, bad(c)
			}
			l := binary.LittleEndian.Uint32(p)
			s := string(p[4 : 4+l])
			p = p[4+l:]
			switch c {
			case 0:
				docs[i].ID = s
			case 1:
				docs[i].Source = s
			case 2:
				docs[i].URL = s
			case 3:
				docs[i].Date = s
			case 4:
				docs[i].Text = s
			case 5:
				docs[i].Lang = s
			}
		}
		if len(p) != 0 {
			return nil, bad(c)
		}
	}
	p, err := gd.page(g, 6, pc)
	if err != nil {
		return nil, err
	}
	if len(p) != 8*rows {
		return nil, bad(6)
	}
	for i := range docs {
		docs[i].LangScore = math.Float64frombits(binary.LittleEndian.Uint64(p[8*i:]))
	}
	var def []bool
	if p, err = gd.page(g, 7, pc); err != nil {
		return nil, err
	}
	if def, p, err = levels(p, rows, def); err != nil {
		return nil, err
	}
	for i := range docs {
		if !def[i] {
			continue
		}
		if len(p) < 8 {
			return nil, bad(7)
		}
		docs[i].Quality, docs[i].HasQuality = math.Float64frombits(binary.LittleEndian.Uint64(p)), true
		p = p[8:]
	}
	if len(p) != 0 {
		return nil, bad(7)
	}
	if p, err = gd.page(g, 8, pc); err != nil {
		return nil, err
	}
	if def, p, err = levels(p, rows, def); err != nil {
		return nil, err
	}
	for i := range docs {
		if !def[i] {
			continue
		}
		if len(p) < 4 || uint64(binary.LittleEndian.Uint32(p)) > uint64(len(p)-4) {
			return nil, bad(8)
		}
		l := binary.LittleEndian.Uint32(p)
		docs[i].Meta = string(p[4 : 4+l])
		p = p[4+l:]
	}
	if len(p) != 0 {
		return nil, bad(8)
	}
	return docs, nil
}
