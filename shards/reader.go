package shards

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/klauspost/compress/zstd"
)

// DocShardReader reads the documents of one Arrow document shard in order.
type DocShardReader struct {
	path string
	f    *os.File
	r    *ipc.FileReader
	next int // next record batch
	rec  arrow.Record
	row  int
	cols docCols
}

type docCols struct {
	id, source, url, date, lang, text, meta *array.String
	langScore, quality                      *array.Float64
	reason, value, dupOf                    *array.String
}

// OpenDocShard opens a document shard file.
func OpenDocShard(path string) (*DocShardReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := ipc.NewFileReader(f, ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: not a readable Arrow IPC file: %w", path, err)
	}
	for _, c := range []string{ColID, ColText} {
		if len(r.Schema().FieldIndices(c)) == 0 {
			r.Close()
			f.Close()
			return nil, fmt.Errorf("%s: not a document shard: no %q column", path, c)
		}
	}
	return &DocShardReader{path: path, f: f, r: r}, nil
}

func (s *DocShardReader) load() error {
	for s.rec == nil || s.row >= int(s.rec.NumRows()) {
		if s.next >= s.r.NumRecords() {
			return io.EOF
		}
		rec, err := s.r.RecordAt(s.next)
		if err != nil {
			return fmt.Errorf("%s: record batch %d: %w", s.path, s.next, err)
		}
		if s.rec != nil {
			s.rec.Release()
		}
		s.rec, s.row = rec, 0
		s.next++
		if err := s.bind(); err != nil {
			return err
		}
	}
	return nil
}

func (s *DocShardReader) bind() error {
	sc := s.rec.Schema()
	str := func(name string) (*array.String, error) {
		idx := sc.FieldIndices(name)
		if len(idx) == 0 {
			return nil, nil
		}
		a, ok := s.rec.Column(idx[0]).(*array.String)
		if !ok {
			return nil, fmt.Errorf("%s: column %q is %s, want utf8", s.path, name, s.rec.Column(idx[0]).DataType())
		}
		return a, nil
	}
	f64 := func(name string) (*array.Float64, error) {
		idx := sc.FieldIndices(name)
		if len(idx) == 0 {
			return nil, nil
		}
		a, ok := s.rec.Column(idx[0]).(*array.Float64)
		if !ok {
			return nil, fmt.Errorf("%s: column %q is %s, want float64", s.path, name, s.rec.Column(idx[0]).DataType())
		}
		return a, nil
	}
	var err error
	c := &s.cols
	for _, p := range []struct {
		name string
		dst  **array.String
	}{{ColID, &c.id}, {ColSource, &c.source}, {ColURL, &c.url}, {ColDate, &c.date}, {ColLang, &c.lang},
		{ColText, &c.text}, {ColMeta, &c.meta}, {ColReason, &c.reason}, {ColRuleValue, &c.value}, {ColDupOf, &c.dupOf}} {
		if *p.dst, err = str(p.name); err != nil {
			return err
		}
	}
	if c.langScore, err = f64(ColLangScore); err != nil {
		return err
	}
	if c.quality, err = f64(ColQuality); err != nil {
		return err
	}
	return nil
}

func strAt(a *array.String, i int) string {
	if a == nil || a.IsNull(i) {
		return ""
	}
	// Clone: the batch's buffers are released when the reader moves on.
	return strings.Clone(a.Value(i))
}

// Next returns the next document, or io.EOF after the last.
func (s *DocShardReader) Next() (*Document, error) {
	if err := s.load(); err != nil {
		return nil, err
	}
	i := s.row
	s.row++
	c := &s.cols
	d := &Document{
		ID:     strAt(c.id, i),
		Source: strAt(c.source, i),
		URL:    strAt(c.url, i),
		Date:   strAt(c.date, i),
		Lang:   strAt(c.lang, i),
		Text:   strAt(c.text, i),
		Meta:   strAt(c.meta, i),
	}
	if c.langScore != nil && c.langScore.IsValid(i) {
		d.LangScore = c.langScore.Value(i)
	}
	if c.quality != nil && c.quality.IsValid(i) {
		d.Quality, d.HasQuality = c.quality.Value(i), true
	}
	if c.reason != nil {
		if r := strAt(c.reason, i); r != "" {
			d.Drop = &Drop{Reason: r, Value: strAt(c.value, i), DupOf: strAt(c.dupOf, i)}
		}
	}
	return d, nil
}

// Close releases the shard.
func (s *DocShardReader) Close() error {
	if s.rec != nil {
		s.rec.Release()
		s.rec = nil
	}
	s.r.Close()
	return s.f.Close()
}

// DirReader reads the documents of one or more shard directories in
// manifest order, checking each shard's sha256 against its manifest before
// reading it.
type DirReader struct {
	dirs   []string
	mans   []*Manifest
	di, si int // next directory, next shard within it
	cur    docSource
	// SkipVerify turns off the checksum check.
	SkipVerify bool
	// fast reads shards with fastDocShard where it can (see docfast.go):
	// documents' strings then share one block per record batch.
	fast bool
	// What the last fast shard leaves for the next: its file buffer
	// (unless documents point into it) and its zstd decoder.
	buf      []byte
	dec      *zstd.Decoder
	decLimit int64
	// pool, when set (recycle), reuses batch blocks of documents passed
	// to Done.
	pool *blockPool
	// noText reads fast shards without their text (OpenDocShardLengths).
	noText bool
}

// recycle makes the fast reader reuse the memory of a record batch once
// every document of it has been passed to Done. The caller must then keep
// no string of a document after Done: they point into that memory.
func (r *DirReader) recycle() {
	r.fast = true
	r.pool = newBlockPool()
}

// Done says the caller is finished with d (see recycle); without recycle
// it does nothing.
func (r *DirReader) Done(d *Document) {
	if r.pool != nil && d != nil {
		r.pool.done(d)
	}
}

// docSource is an open document shard.
type docSource = DocSource

// DocSource reads one document shard's documents in order.
type DocSource interface {
	// Next returns the next document, or io.EOF after the last.
	Next() (*Document, error)
	Close() error
}

// OpenDocShardInfo opens the document shard at path whose manifest entry
// is info, and with verify checks the file's size and sha256 against it
// first. Where the shard's layout allows, it reads with the fast reader
// (docfast.go: the file read once, each record batch's buffers decoded
// into one block with a reused zstd decoder); else with Arrow Go's reader,
// as OpenDocShard does. Arrow Go decompresses every buffer through a new
// streaming zstd decoder: in a takedown's profile on 200,000 documents
// those decoders took 4.3 of 43.8 CPU-seconds.
func OpenDocShardInfo(path string, info ShardInfo, verify bool) (DocSource, error) {
	return openDocShardInfo(path, info, verify, false)
}

// OpenDocShardLengths is OpenDocShardInfo for a reader that needs each
// document's text length but not its text (counting bytes, listing ids):
// where the fast reader handles the shard, the text column, nearly all of
// a shard's bytes, is not decompressed, and each document's Text is as
// many zero bytes as its text has (shared and read-only: not to be kept
// or changed). Elsewhere the text is read. The lineage index reads the
// shards this way: decompressing the text was 19% of its CPU at 1,000,000
// documents.
func OpenDocShardLengths(path string, info ShardInfo, verify bool) (DocSource, error) {
	return openDocShardInfo(path, info, verify, true)
}

func openDocShardInfo(path string, info ShardInfo, verify, noText bool) (DocSource, error) {
	if info.Bytes > 0 && info.Rows > 0 {
		s, err := openFastDocShard(path, info, verify, nil)
		if err == nil {
			s.noText = noText
			return s, nil
		}
		if !errors.Is(err, errNotFast) {
			return nil, err
		}
	}
	if verify {
		if err := VerifyShard(path, info); err != nil {
			return nil, err
		}
	}
	return OpenDocShard(path)
}

// OpenDocDirs opens finished shard directories (each with a manifest.json).
func OpenDocDirs(dirs ...string) (*DirReader, error) {
	r := &DirReader{dirs: dirs}
	for _, d := range dirs {
		m, err := ReadManifest(d)
		if err != nil {
			return nil, err
		}
		if m.Kind == KindTokens {
			return nil, fmt.Errorf("%s: holds token shards, not documents", d)
		}
		r.mans = append(r.mans, m)
	}
	return r, nil
}

// Manifests returns the manifests of the directories, in order.
func (r *DirReader) Manifests() []*Manifest { return r.mans }

// Identity identifies the input for a stage's fingerprint: per directory,
// its shards' sha256 in order. Paths are left out, so a moved input is the
// same input.
func (r *DirReader) Identity() []any {
	ids := make([]any, 0, len(r.mans))
	for _, m := range r.mans {
		sums := make([]string, len(m.Shards))
		for i, s := range m.Shards {
			sums[i] = s.SHA256
		}
		ids = append(ids, sums)
	}
	return ids
}

// TotalRows is the number of documents in all directories.
func (r *DirReader) TotalRows() int64 {
	var n int64
	for _, m := range r.mans {
		n += SumShards(m.Shards).Rows
	}
	return n
}

// TotalDataBytes is the uncompressed size of all documents.
func (r *DirReader) TotalDataBytes() int64 {
	var n int64
	for _, m := range r.mans {
		n += SumShards(m.Shards).DataBytes
	}
	return n
}

// Skip moves past the first n documents without decoding whole shards
// where the manifest's row counts allow.
func (r *DirReader) Skip(n int64) error {
	for n > 0 {
		if r.cur == nil {
			// Skip whole shards by their manifest row counts.
			for r.di < len(r.mans) {
				m := r.mans[r.di]
				if r.si >= len(m.Shards) {
					r.di, r.si = r.di+1, 0
					continue
				}
				if rows := m.Shards[r.si].Rows; rows <= n {
					n -= rows
					r.si++
					continue
				}
				break
			}
			if n == 0 {
				return nil
			}
		}
		d, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("skip: input has fewer documents than the resume point")
			}
			return err
		}
		r.Done(d)
		n--
	}
	return nil
}

// Next returns the next document, or io.EOF after the last.
func (r *DirReader) Next() (*Document, error) {
	for {
		if r.cur != nil {
			d, err := r.cur.Next()
			if err == nil {
				return d, nil
			}
			r.release()
			if !errors.Is(err, io.EOF) {
				return nil, err
			}
		}
		if r.di >= len(r.mans) {
			return nil, io.EOF
		}
		m := r.mans[r.di]
		if r.si >= len(m.Shards) {
			r.di, r.si = r.di+1, 0
			continue
		}
		info := m.Shards[r.si]
		path := filepath.Join(r.dirs[r.di], info.Name)
		r.si++
		if r.fast {
			s, err := openFastDocShard(path, info, !r.SkipVerify, r.buf)
			if err == nil {
				s.dec, s.decLimit = r.dec, r.decLimit
				s.blocks2 = r.pool
				s.noText = r.noText
				r.cur = s
				continue
			}
			if !errors.Is(err, errNotFast) {
				return nil, err
			}
		}
		if !r.SkipVerify {
			if err := VerifyShard(path, info); err != nil {
				return nil, err
			}
		}
		s, err := OpenDocShard(path)
		if err != nil {
			return nil, err
		}
		r.cur = s
	}
}

// release closes the current shard, keeping what the next can reuse.
func (r *DirReader) release() error {
	if fs, ok := r.cur.(*fastDocShard); ok {
		r.dec, r.decLimit = fs.dec, fs.decLimit
		r.buf = nil
		if !fs.aliases {
			r.buf = fs.data[:0]
		}
	}
	err := r.cur.Close()
	r.cur = nil
	return err
}

// Close releases the reader.
func (r *DirReader) Close() error {
	var err error
	if r.cur != nil {
		err = r.release()
	}
	if r.dec != nil {
		r.dec.Close()
		r.dec = nil
	}
	r.buf = nil
	return err
}

// VerifyShard checks a shard file's size and sha256 against its manifest entry.
func VerifyShard(path string, info ShardInfo) error {
	sum, n, err := FileSHA256(path)
	if err != nil {
		return fmt.Errorf("shard %s: %w", path, err)
	}
	if n != info.Bytes {
		return fmt.Errorf("shard %s: %d bytes, manifest says %d (truncated or replaced)", path, n, info.Bytes)
	}
	if sum != info.SHA256 {
		return fmt.Errorf("shard %s: sha256 %s does not match the manifest's %s", path, sum, info.SHA256)
	}
	return nil
}
