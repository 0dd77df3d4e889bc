package report

import (
	"context"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/smelt-dev/smelt/shards"
)

// docSet is the documents of one shard directory (a step's kept output or
// its dropped side output), addressed by row number across its shards.
// Nothing is loaded up front: a page reads the one or two record batches
// it shows, and the per-shard batch boundaries, the id/url lookup and the
// per-reason row lists are built on first use.
type docSet struct {
	Step string // step name
	Set  string // "kept" or "dropped"
	Dir  string
	man  *shards.Manifest
	// starts[i] is the first row of shard i; starts[len] the total.
	starts []int64

	mu      sync.Mutex
	batches map[int][]int64 // shard -> first row of each batch, plus the shard's rows

	idxOnce sync.Once
	idx     *setIndex
	idxErr  error
}

func newDocSet(step, set, dir string, m *shards.Manifest) *docSet {
	s := &docSet{Step: step, Set: set, Dir: dir, man: m, batches: map[int][]int64{}}
	s.starts = make([]int64, len(m.Shards)+1)
	for i, sh := range m.Shards {
		s.starts[i+1] = s.starts[i] + sh.Rows
	}
	return s
}

// Rows is the number of documents in the set.
func (s *docSet) Rows() int64 { return s.starts[len(s.starts)-1] }

// locate maps a row of the set to (shard, row in shard).
func (s *docSet) locate(row int64) (int, int64) {
	i := sort.Search(len(s.man.Shards), func(i int) bool { return s.starts[i+1] > row })
	return i, row - s.starts[i]
}

// shardFile is one open shard.
type shardFile struct {
	path string
	f    *os.File
	r    *ipc.FileReader
}

func (s *docSet) open(shard int) (*shardFile, error) {
	path := filepath.Join(s.Dir, s.man.Shards[shard].Name)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := ipc.NewFileReader(f, ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: not a readable Arrow IPC file: %w", path, err)
	}
	return &shardFile{path: path, f: f, r: r}, nil
}

func (sf *shardFile) Close() { sf.r.Close(); sf.f.Close() }

// batch reads record batch i; the caller releases it.
func (sf *shardFile) batch(i int) (arrow.Record, error) {
	rec, err := sf.r.RecordAt(i)
	if err != nil {
		return nil, fmt.Errorf("%s: record batch %d: %w", sf.path, i, err)
	}
	return rec, nil
}

// batchStarts returns the first row of every batch of a shard (and its row
// count last), reading the shard's batches once.
func (s *docSet) batchStarts(shard int, sf *shardFile) ([]int64, error) {
	s.mu.Lock()
	b, ok := s.batches[shard]
	s.mu.Unlock()
	if ok {
		return b, nil
	}
	b = []int64{0}
	for i := 0; i < sf.r.NumRecords(); i++ {
		rec, err := sf.batch(i)
		if err != nil {
			return nil, err
		}
		b = append(b, b[len(b)-1]+rec.NumRows())
		rec.Release()
	}
	if want := s.man.Shards[shard].Rows; b[len(b)-1] != want {
		return nil, fmt.Errorf("%s: %d rows, manifest says %d", sf.path, b[len(b)-1], want)
	}
	s.mu.Lock()
	s.batches[shard] = b
	s.mu.Unlock()
	return b, nil
}

// Doc is a document with its address in the run.
type Doc struct {
	shards.Document
	Step string
	Set  string
	Row  int64
	// Shard and ShardRow say where it is stored.
	Shard    string
	ShardRow int64
}

// Snippet is the first n runes of the text on one line.
func (d *Doc) Snippet(n int) string { return snippet(d.Text, n) }

func snippet(text string, n int) string {
	// Only the start matters: cut long texts (at a rune boundary) before
	// collapsing white space.
	if limit := 16 * n; len(text) > limit {
		for limit > 0 && !utf8.RuneStart(text[limit]) {
			limit--
		}
		text = text[:limit] + " …"
	}
	t := strings.Join(strings.Fields(text), " ")
	if utf8.RuneCountInString(t) <= n {
		return t
	}
	r := []rune(t)
	return string(r[:n]) + "…"
}

// Read returns rows [lo, hi) of the set (clipped to the set).
func (s *docSet) Read(ctx context.Context, lo, hi int64) ([]*Doc, error) {
	hi = min(hi, s.Rows())
	var out []*Doc
	for lo < hi {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		shard, r := s.locate(lo)
		n := min(hi, s.starts[shard+1]) - lo
		docs, err := s.readShard(shard, r, r+n, lo)
		if err != nil {
			return nil, err
		}
		out = append(out, docs...)
		lo += n
	}
	return out, nil
}

// readShard reads rows [lo, hi) of one shard; first is the set row of lo.
func (s *docSet) readShard(shard int, lo, hi, first int64) ([]*Doc, error) {
	sf, err := s.open(shard)
	if err != nil {
		return nil, err
	}
	defer sf.Close()
	b, err := s.batchStarts(shard, sf)
	if err != nil {
		return nil, err
	}
	var out []*Doc
	bi := sort.Search(len(b)-1, func(i int) bool { return b[i+1] > lo })
	for ; bi < len(b)-1 && b[bi] < hi; bi++ {
		rec, err := sf.batch(bi)
		if err != nil {
			return nil, err
		}
		cols, err := bindCols(sf.path, rec)
		if err != nil {
			rec.Release()
			return nil, err
		}
		for r := max(lo, b[bi]); r < min(hi, b[bi+1]); r++ {
			d := &Doc{Document: cols.doc(int(r - b[bi])), Step: s.Step, Set: s.Set, Row: first + r - lo,
				Shard: s.man.Shards[shard].Name, ShardRow: r}
			out = append(out, d)
		}
		rec.Release()
	}
	return out, nil
}

// cols are a record batch's document columns; missing ones are nil.
type cols struct {
	id, source, url, date, lang, text, meta, reason, value, dupOf *array.String
	langScore, quality                                            *array.Float64
}

func bindCols(path string, rec arrow.Record) (*cols, error) {
	sc := rec.Schema()
	c := &cols{}
	for _, p := range []struct {
		name string
		dst  **array.String
	}{{shards.ColID, &c.id}, {shards.ColSource, &c.source}, {shards.ColURL, &c.url}, {shards.ColDate, &c.date},
		{shards.ColLang, &c.lang}, {shards.ColText, &c.text}, {shards.ColMeta, &c.meta}, {shards.ColReason, &c.reason},
		{shards.ColRuleValue, &c.value}, {shards.ColDupOf, &c.dupOf}} {
		if idx := sc.FieldIndices(p.name); len(idx) > 0 {
			a, ok := rec.Column(idx[0]).(*array.String)
			if !ok {
				return nil, fmt.Errorf("%s: column %q is %s, want utf8", path, p.name, rec.Column(idx[0]).DataType())
			}
			*p.dst = a
		}
	}
	for _, p := range []struct {
		name string
		dst  **array.Float64
	}{{shards.ColLangScore, &c.langScore}, {shards.ColQuality, &c.quality}} {
		if idx := sc.FieldIndices(p.name); len(idx) > 0 {
			a, ok := rec.Column(idx[0]).(*array.Float64)
			if !ok {
				return nil, fmt.Errorf("%s: column %q is %s, want float64", path, p.name, rec.Column(idx[0]).DataType())
			}
			*p.dst = a
		}
	}
	if c.id == nil || c.text == nil {
		return nil, fmt.Errorf("%s: not a document shard (no id or text column)", path)
	}
	return c, nil
}

func str(a *array.String, i int) string {
	if a == nil || a.IsNull(i) {
		return ""
	}
	return strings.Clone(a.Value(i))
}

func (c *cols) doc(i int) shards.Document {
	d := shards.Document{ID: str(c.id, i), Source: str(c.source, i), URL: str(c.url, i), Date: str(c.date, i),
		Lang: str(c.lang, i), Text: str(c.text, i), Meta: str(c.meta, i)}
	if c.langScore != nil && c.langScore.IsValid(i) {
		d.LangScore = c.langScore.Value(i)
	}
	if c.quality != nil && c.quality.IsValid(i) {
		d.Quality, d.HasQuality = c.quality.Value(i), true
	}
	if r := str(c.reason, i); r != "" {
		d.Drop = &shards.Drop{Reason: r, Value: str(c.value, i), DupOf: str(c.dupOf, i)}
	}
	return d
}

// setIndex finds rows by id, url and drop reason. It holds 8-byte hashes
// and row numbers, not the strings: about 40 bytes per document, so a
// million-document set costs some 40 MB once someone searches it.
type setIndex struct {
	byID, byURL []hashRow // sorted by hash
	reasons     map[string][]int64
}

type hashRow struct {
	h   uint64
	row int64
}

var seed = maphash.MakeSeed()

func hashString(s string) uint64 { return maphash.String(seed, s) }

func find(list []hashRow, key string) []int64 {
	h := hashString(key)
	i := sort.Search(len(list), func(i int) bool { return list[i].h >= h })
	var rows []int64
	for ; i < len(list) && list[i].h == h; i++ {
		rows = append(rows, list[i].row)
	}
	return rows
}

// index builds the set's index on first use by reading every shard once.
func (s *docSet) index(ctx context.Context) (*setIndex, error) {
	s.idxOnce.Do(func() { s.idx, s.idxErr = s.buildIndex(ctx) })
	return s.idx, s.idxErr
}

func (s *docSet) buildIndex(ctx context.Context) (*setIndex, error) {
	ix := &setIndex{reasons: map[string][]int64{}}
	var row int64
	for shard := range s.man.Shards {
		sf, err := s.open(shard)
		if err != nil {
			return nil, err
		}
		b := []int64{0}
		for bi := 0; bi < sf.r.NumRecords(); bi++ {
			if err := ctx.Err(); err != nil {
				sf.Close()
				return nil, err
			}
			rec, err := sf.batch(bi)
			if err != nil {
				sf.Close()
				return nil, err
			}
			c, err := bindCols(sf.path, rec)
			if err != nil {
				rec.Release()
				sf.Close()
				return nil, err
			}
			for i := 0; i < int(rec.NumRows()); i++ {
				ix.byID = append(ix.byID, hashRow{hashString(c.id.Value(i)), row})
				if c.url != nil && c.url.Value(i) != "" {
					ix.byURL = append(ix.byURL, hashRow{hashString(c.url.Value(i)), row})
				}
				if c.reason != nil {
					r := c.reason.Value(i)
					ix.reasons[r] = append(ix.reasons[r], row)
				}
				row++
			}
			b = append(b, b[len(b)-1]+rec.NumRows())
			rec.Release()
		}
		sf.Close()
		if b[len(b)-1] != s.man.Shards[shard].Rows {
			return nil, fmt.Errorf("%s: %d rows, manifest says %d", filepath.Join(s.Dir, s.man.Shards[shard].Name), b[len(b)-1], s.man.Shards[shard].Rows)
		}
		s.mu.Lock()
		s.batches[shard] = b
		s.mu.Unlock()
	}
	for _, l := range [][]hashRow{ix.byID, ix.byURL} {
		slices.SortFunc(l, func(a, b hashRow) int {
			if a.h != b.h {
				if a.h < b.h {
					return -1
				}
				return 1
			}
			return int(a.row - b.row)
		})
	}
	return ix, nil
}
