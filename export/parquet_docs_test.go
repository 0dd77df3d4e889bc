package export

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
)

// wikiDocs makes documents of real text: each paragraph of WikiText-2's
// validation and test sets (../shared/data) is a document, with the
// article it comes from as its URL; some have a quality score and a
// meta object, so that both nullable columns hold values and nulls.
func wikiDocs(t testing.TB) []*shards.Document {
	t.Helper()
	var docs []*shards.Document
	for _, name := range []string{"wikitext-2_valid.txt", "wikitext-2_test.txt"} {
		data, err := os.ReadFile(testutil.SharedData(t, "clean_text/"+name))
		if err != nil {
			t.Fatal(err)
		}
		title := ""
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "= ") && strings.HasSuffix(line, " =") && !strings.HasPrefix(line, "= =") {
				title = strings.Trim(line, "= ")
				continue
			}
			if len(line) < 80 || strings.HasPrefix(line, "=") {
				continue
			}
			i := len(docs)
			d := &shards.Document{
				ID:        fmt.Sprintf("%s/%06d", strings.TrimSuffix(name, ".txt"), i),
				Source:    "wiki",
				URL:       "https://en.wikipedia.org/wiki/" + strings.ReplaceAll(title, " ", "_"),
				Date:      "2016-09-26T00:00:00Z",
				Lang:      "en",
				LangScore: 0.5 + float64(len(line)%500)/1000,
				Text:      line,
			}
			if i%3 == 0 {
				d.Quality, d.HasQuality = float64(i%1000)/1000, true
			}
			if i%5 == 0 {
				d.Meta = fmt.Sprintf(`{"article":%q,"paragraph":%d}`, title, i)
			}
			docs = append(docs, d)
		}
	}
	return docs
}

// writeCutDocDir writes documents into a document-shard directory, one
// shard per element of parts (so that a reduced copy keeps the shards'
// names, as a takedown's rewritten shards do).
func writeCutDocDir(t testing.TB, dir string, parts [][]*shards.Document) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := shards.NewDocWriter(dir, shards.DocWriterOptions{Manual: true, BatchRows: 64})
	st := shards.NewStats("ingest")
	for _, p := range parts {
		for _, d := range p {
			st.In.Add(shards.DocBytes(d))
			st.Keep(d)
			if err := w.Write(d); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Cut(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if len(w.Shards()) != len(parts) {
		t.Fatalf("%d shards written for %d parts", len(w.Shards()), len(parts))
	}
	if err := shards.WriteStats(dir, st); err != nil {
		t.Fatal(err)
	}
	if err := shards.WriteManifest(dir, &shards.Manifest{Kind: shards.KindDocuments, Stage: "ingest", Shards: w.Shards(),
		Totals: shards.SumShards(w.Shards()), Sources: shards.SourceTotals(st)}); err != nil {
		t.Fatal(err)
	}
}

// split cuts docs into parts of n documents.
func split(docs []*shards.Document, n int) [][]*shards.Document {
	var out [][]*shards.Document
	for len(docs) > 0 {
		k := min(n, len(docs))
		out = append(out, docs[:k])
		docs = docs[k:]
	}
	return out
}

func without(parts [][]*shards.Document, removed map[string]bool) [][]*shards.Document {
	var out [][]*shards.Document
	for _, p := range parts {
		var q []*shards.Document
		for _, d := range p {
			if !removed[d.ID] {
				q = append(q, d)
			}
		}
		out = append(out, q)
	}
	return out
}

// pageGroups is the documents' expected page groups (ids).
func pageGroups(docs []*shards.Document) [][]*shards.Document {
	var out [][]*shards.Document
	var cur []*shards.Document
	var n int64
	for _, d := range docs {
		cur = append(cur, d)
		n += shards.DocBytes(d)
		if docPageCut(d.ID) || n >= docPageMaxBytes {
			out, cur, n = append(out, cur), nil, 0
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// checkDocLayout checks a documents Parquet file written from docs with a
// row-group limit: every column has one page per expected page group
// (row-aligned), and row groups end at the first page group that brings
// them to the limit.
func checkDocLayout(t *testing.T, path string, docs []*shards.Document, limit int64, codec compress.Compression) (groups, rowGroups int) {
	t.Helper()
	var wantRG [][]int // page group sizes per row group
	var cur []int
	var n int64
	for _, g := range pageGroups(docs) {
		cur = append(cur, len(g))
		for _, d := range g {
			n += shards.DocBytes(d)
		}
		if n >= limit {
			wantRG, cur, n = append(wantRG, cur), nil, 0
		}
	}
	if len(cur) > 0 {
		wantRG = append(wantRG, cur)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	if pf.NumRowGroups() != len(wantRG) {
		t.Fatalf("%s: %d row groups, want %d", path, pf.NumRowGroups(), len(wantRG))
	}
	for i, want := range wantRG {
		rg := pf.MetaData().RowGroup(i)
		for c := 0; c < rg.NumColumns(); c++ {
			cc, err := rg.ColumnChunk(c)
			if err != nil {
				t.Fatal(err)
			}
			if cc.Compression() != codec {
				t.Fatalf("%s row group %d column %d: compression %v, want %v", path, i, c, cc.Compression(), codec)
			}
			chunk := data[cc.DataPageOffset() : cc.DataPageOffset()+cc.TotalCompressedSize()]
			var got []int
			for len(chunk) > 0 {
				h, err := parsePageHeader(chunk)
				if err != nil {
					t.Fatalf("%s row group %d column %d: %v", path, i, c, err)
				}
				got = append(got, int(h.nvals))
				chunk = chunk[h.n+int(h.compressed):]
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s row group %d column %d: pages of %v rows, want %v", path, i, c, got, want)
			}
		}
		groups += len(want)
	}
	return groups, len(wantRG)
}

// readParquetDocs reads a documents Parquet file with Arrow Go (pqarrow)
// into documents.
func readParquetDocs(t *testing.T, path string) []*shards.Document {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pf, err := file.NewParquetReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 100}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	sch, err := fr.Schema()
	if err != nil {
		t.Fatal(err)
	}
	want := ParquetDocSchema()
	for i, f := range want.Fields() {
		g := sch.Field(i)
		if sch.NumFields() != want.NumFields() || g.Name != f.Name || !arrow.TypeEqual(g.Type, f.Type) || g.Nullable != f.Nullable {
			t.Fatalf("%s: Arrow schema %v, want %v", path, sch, want)
		}
	}
	rr, err := fr.GetRecordReader(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	var out []*shards.Document
	for {
		rec, err := rr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		s := func(i int) *array.String { return rec.Column(i).(*array.String) }
		for r := 0; r < int(rec.NumRows()); r++ {
			d := &shards.Document{ID: s(0).Value(r), Source: s(1).Value(r), URL: s(2).Value(r), Date: s(3).Value(r),
				Text: s(4).Value(r), Lang: s(5).Value(r), LangScore: rec.Column(6).(*array.Float64).Value(r)}
			if q := rec.Column(7).(*array.Float64); q.IsValid(r) {
				d.Quality, d.HasQuality = q.Value(r), true
			}
			if m := s(8); m.IsValid(r) {
				d.Meta = m.Value(r)
			}
			out = append(out, d)
		}
	}
	return out
}

func sameDoc(a, b *shards.Document) bool {
	return a.ID == b.ID && a.Source == b.Source && a.URL == b.URL && a.Date == b.Date && a.Text == b.Text && a.Lang == b.Lang &&
		a.LangScore == b.LangScore && a.HasQuality == b.HasQuality && a.Quality == b.Quality && a.Meta == b.Meta
}

// sameExportDirs fails unless two export directories hold the same files with
// the same bytes (export.json included).
func sameExportDirs(t testing.TB, a, b, what string) {
	t.Helper()
	ea, _ := os.ReadDir(a)
	eb, _ := os.ReadDir(b)
	if len(ea) != len(eb) || len(ea) == 0 {
		t.Fatalf("%s: %d files and %d files", what, len(ea), len(eb))
	}
	for i := range ea {
		if ea[i].Name() != eb[i].Name() {
			t.Fatalf("%s: %s and %s", what, ea[i].Name(), eb[i].Name())
		}
		x, err := os.ReadFile(filepath.Join(a, ea[i].Name()))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(b, eb[i].Name()))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Fatalf("%s: %s differs (%d and %d bytes)", what, ea[i].Name(), len(x), len(y))
		}
	}
}

// expectedCopies counts the earlier export's page groups a takedown of
// removed can copy: those that are also a page group of the reduced
// shard (the same documents; a group that lost a document, or that
// merges with its neighbour because a cut document went, is not).
func expectedCopies(parts [][]*shards.Document, removed map[string]bool) int {
	key := func(g []*shards.Document) string {
		var b strings.Builder
		for _, d := range g {
			b.WriteString(d.ID + "\x00")
		}
		return b.String()
	}
	n := 0
	for i, p := range parts {
		now := map[string]bool{}
		for _, g := range pageGroups(without(parts[i:i+1], removed)[0]) {
			now[key(g)] = true
		}
		for _, g := range pageGroups(p) {
			if now[key(g)] {
				n++
			}
		}
	}
	return n
}

// TestParquetDocsTakedownReuse exports real documents, removes some of
// them (none, the first, a cut point, a whole page group, 1 % and 10 % at
// random) by rewriting the shards without them, and exports the reduced
// shards both from scratch and reusing the first export: the files and
// export.json must be the same bytes, the number of page groups copied
// must be exactly the untouched ones, and the result must read back in
// Arrow Go as the remaining documents. Not parallel: it reads the
// package's copy counter.
func TestParquetDocsTakedownReuse(t *testing.T) {
	docs := wikiDocs(t)[:2100]
	parts := split(docs, 700)
	root := t.TempDir()
	orig := filepath.Join(root, "orig")
	writeCutDocDir(t, orig, parts)
	const limit = 96 << 10
	opt := Options{Format: FormatParquet, RowGroupBytes: limit}
	in := func(dir string) []*Input {
		i, err := OpenInput("wiki", dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		return []*Input{i}
	}
	old := filepath.Join(root, "old")
	export(t, in(orig), old, opt)
	totalGroups := 0
	for i, p := range parts {
		g, rgs := checkDocLayout(t, filepath.Join(old, fmt.Sprintf("part-%05d.parquet", i)), p, limit, compress.Codecs.Zstd)
		if i < len(parts)-1 && (g < 5 || rgs < 2) {
			t.Fatalf("part %d: %d page groups in %d row groups: the test needs several of each", i, g, rgs)
		}
		totalGroups += g
	}

	firstCut := ""
	for _, d := range docs[:len(docs)-1] {
		if docPageCut(d.ID) {
			firstCut = d.ID
			break
		}
	}
	onePage := map[string]bool{}
	for _, d := range pageGroups(parts[1])[2] {
		onePage[d.ID] = true
	}
	random := func(frac float64, seed uint64) map[string]bool {
		r := rand.New(rand.NewPCG(seed, 28))
		m := map[string]bool{}
		for _, d := range docs {
			if r.Float64() < frac {
				m[d.ID] = true
			}
		}
		return m
	}
	cases := []struct {
		name    string
		removed map[string]bool
	}{
		{"none", map[string]bool{}},
		{"first", map[string]bool{docs[0].ID: true}},
		{"cut point", map[string]bool{firstCut: true}},
		{"one page", onePage},
		{"1%", random(0.01, 1)},
		{"10%", random(0.10, 2)},
	}
	for k, tc := range cases {
		reduced := filepath.Join(root, fmt.Sprintf("in%d", k))
		kept := without(parts, tc.removed)
		writeCutDocDir(t, reduced, kept)
		fresh, reused := filepath.Join(root, fmt.Sprintf("fresh%d", k)), filepath.Join(root, fmt.Sprintf("reused%d", k))
		export(t, in(reduced), fresh, opt)
		before := docGroupsCopied.Load()
		o := opt
		o.Reuse = &Reuse{Dir: old}
		export(t, in(reduced), reused, o)
		copied := docGroupsCopied.Load() - before
		sameExportDirs(t, fresh, reused, tc.name)
		if want := expectedCopies(parts, tc.removed); copied != int64(want) {
			t.Fatalf("%s: %d page groups copied, want %d of %d", tc.name, copied, want, totalGroups)
		}
		t.Logf("%s: %d documents removed, %d of %d page groups copied", tc.name, len(tc.removed), copied, totalGroups)
		if tc.name == "none" && copied != int64(totalGroups) {
			t.Fatalf("nothing removed, but only %d of %d page groups copied", copied, totalGroups)
		}
		if tc.name == "1%" {
			for i, p := range kept {
				f := filepath.Join(reused, fmt.Sprintf("part-%05d.parquet", i))
				checkDocLayout(t, f, p, limit, compress.Codecs.Zstd)
				got := readParquetDocs(t, f)
				if len(got) != len(p) {
					t.Fatalf("%s: %d documents, want %d", f, len(got), len(p))
				}
				for j := range p {
					if !sameDoc(got[j], p[j]) {
						t.Fatalf("%s row %d: read back %+v, want %+v", f, j, got[j], p[j])
					}
				}
			}
		}
	}
}

// TestParquetDocsReuseCorrupt damages the earlier export in several ways;
// a reusing export must still give the bytes of a fresh one, copying
// nothing from a damaged file.
func TestParquetDocsReuseCorrupt(t *testing.T) {
	docs := wikiDocs(t)
	parts := split(docs, 1500)[:2]
	root := t.TempDir()
	orig := filepath.Join(root, "orig")
	writeCutDocDir(t, orig, parts)
	opt := Options{Format: FormatParquet}
	in := func(dir string) []*Input {
		i, err := OpenInput("wiki", dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		return []*Input{i}
	}
	removed := map[string]bool{parts[0][10].ID: true, parts[1][100].ID: true}
	reduced := filepath.Join(root, "reduced")
	writeCutDocDir(t, reduced, without(parts, removed))
	fresh := filepath.Join(root, "fresh")
	export(t, in(reduced), fresh, opt)
	damages := []struct {
		name string
		// fix also rewrites export.json's sha256 and size, so that
		// only the page checks stand between the damage and the copy.
		fix    bool
		damage func(data []byte) []byte
	}{
		{"byte flipped in a page", false, func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }},
		{"byte flipped in a page, record fixed", true, func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }},
		{"truncated", false, func(b []byte) []byte { return b[:len(b)-100] }},
		{"truncated, record fixed", true, func(b []byte) []byte { return b[:len(b)-100] }},
		{"footer length huge, record fixed", true, func(b []byte) []byte {
			b[len(b)-6] = 0xff
			return b
		}},
		{"empty, record fixed", true, func(b []byte) []byte { return nil }},
		{"missing", false, nil},
	}
	pristine := filepath.Join(root, "pristine")
	export(t, in(orig), pristine, opt)
	for k, dm := range damages {
		old := filepath.Join(root, fmt.Sprintf("old%d", k))
		if err := os.CopyFS(old, os.DirFS(pristine)); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(old, "part-00000.parquet")
		if dm.damage == nil {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		} else {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			data = dm.damage(data)
			if err := os.WriteFile(f, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if dm.fix {
				fixRecord(t, old, "part-00000.parquet", data)
			}
		}
		before := docGroupsCopied.Load()
		o := opt
		o.Reuse = &Reuse{Dir: old}
		out := filepath.Join(root, fmt.Sprintf("reused%d", k))
		export(t, in(reduced), out, o)
		sameExportDirs(t, fresh, out, dm.name)
		// Only the second file's untouched groups are copied.
		if copied, want := docGroupsCopied.Load()-before, expectedCopies(parts[1:], removed); copied != int64(want) {
			t.Fatalf("%s: %d page groups copied, want %d (the undamaged file's)", dm.name, copied, want)
		}
	}
}

// fixRecord rewrites an export.json's record of a file to match data.
func fixRecord(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	p := filepath.Join(dir, SidecarName)
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	for _, f := range m["files"].([]any) {
		f := f.(map[string]any)
		if f["name"] == name {
			f["sha256"], f["bytes"] = h, len(data)
		}
	}
	raw, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestParquetDocsCodecs checks the page layout and read-back with every
// codec, and that an export reusing an identical one copies every page
// group and gives the same bytes.
func TestParquetDocsCodecs(t *testing.T) {
	docs := wikiDocs(t)[:3000]
	parts := split(docs, 1500)
	root := t.TempDir()
	orig := filepath.Join(root, "orig")
	writeCutDocDir(t, orig, parts)
	i, err := OpenInput("wiki", orig, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		codec compress.Compression
	}{{"zstd", compress.Codecs.Zstd}, {"snappy", compress.Codecs.Snappy}, {"none", compress.Codecs.Uncompressed}} {
		out := filepath.Join(root, c.name)
		opt := Options{Format: FormatParquet, Compression: c.name, RowGroupBytes: 128 << 10}
		export(t, []*Input{i}, out, opt)
		again := filepath.Join(root, c.name+"-again")
		before := docGroupsCopied.Load()
		opt.Reuse = &Reuse{Dir: out}
		export(t, []*Input{i}, again, opt)
		sameExportDirs(t, out, again, c.name)
		total := 0
		for k, p := range parts {
			f := filepath.Join(out, fmt.Sprintf("part-%05d.parquet", k))
			g, _ := checkDocLayout(t, f, p, 128<<10, c.codec)
			total += g
			got := readParquetDocs(t, f)
			if len(got) != len(p) {
				t.Fatalf("%s: %d documents, want %d", f, len(got), len(p))
			}
			for j := range p {
				if !sameDoc(got[j], p[j]) {
					t.Fatalf("%s row %d differs", f, j)
				}
			}
		}
		if copied := docGroupsCopied.Load() - before; copied != int64(total) {
			t.Fatalf("%s: %d of %d page groups copied from an identical export", c.name, copied, total)
		}
	}
}

// TestPageHeaderRoundTrip checks that the hand-written page headers parse
// back, and that every truncation of one is refused.
func TestPageHeaderRoundTrip(t *testing.T) {
	for _, c := range []struct {
		u, z, nv int32
		crc      uint32
		enc      int32
	}{{0, 0, 0, 0, encPlain}, {1 << 30, 1<<31 - 1, 1, 0xffffffff, encRLEDict}, {12345, 678, 16, 0x80000000, encPlain}} {
		b := appendPageHeader(nil, c.u, c.z, c.crc, c.nv, c.enc)
		h, err := parsePageHeader(append(b, 1, 2, 3))
		if err != nil || h.n != len(b) || h.uncompressed != c.u || h.compressed != c.z || h.crc != c.crc || h.nvals != c.nv || h.enc != c.enc || h.dict {
			t.Fatalf("%+v: parsed %+v, %v", c, h, err)
		}
		for i := 0; i < len(b); i++ {
			if _, err := parsePageHeader(b[:i]); err == nil {
				t.Fatalf("%+v: header cut to %d bytes parsed", c, i)
			}
		}
		d := appendDictPageHeader(nil, c.u, c.z, c.crc, c.nv)
		if h, err := parsePageHeader(d); err != nil || !h.dict || h.n != len(d) || h.nvals != c.nv {
			t.Fatalf("%+v: dictionary header parsed %+v, %v", c, h, err)
		}
	}
}

// FuzzParsePageHeader: no input makes the header parser panic or claim
// more bytes than it was given.
func FuzzParsePageHeader(f *testing.F) {
	f.Add(appendPageHeader(nil, 100, 50, 7, 3, encPlain))
	f.Add(appendDictPageHeader(nil, 100, 50, 7, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parsePageHeader(b)
		if err == nil && (h.n > len(b) || h.compressed < 0 || h.uncompressed < 0) {
			t.Fatalf("parsed %+v from %d bytes", h, len(b))
		}
	})
}
