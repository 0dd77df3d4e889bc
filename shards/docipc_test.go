package shards

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/smelt-dev/smelt/internal/nodepkg"
)

// edgeDocs are documents with every awkward value: null and present
// quality, empty strings in every column, empty meta, multi-byte text,
// zero and negative scores, and (when dropped) drop reasons with empty
// values.
func edgeDocs(n int, dropped bool) []*Document {
	docs := make([]*Document, n)
	for i := range docs {
		d := &Document{
			ID:        fmt.Sprintf("edge/%05d", i),
			Source:    []string{"cc", "", "wiki"}[i%3],
			URL:       fmt.Sprintf("https://例え.jp/%d?q=ü&r=%%20", i),
			Date:      "2024-05-06T07:08:09Z",
			Lang:      []string{"en", "ja", ""}[i%3],
			LangScore: []float64{0, -1.5, 0.999, 1e-300}[i%4],
			Text:      strings.Repeat(fmt.Sprintf("Línea %d — 日本語のテキスト ✓ 🙂 \"q\"\t\n", i), i%13),
			Meta:      fmt.Sprintf(`{"i":%d,"s":"ß"}`, i),
		}
		if i%3 != 1 {
			d.Quality, d.HasQuality = float64(i%10)/10-0.3, true
		}
		if i%5 == 0 {
			d.URL, d.Meta, d.Date = "", "", ""
		}
		if dropped && i%4 != 3 {
			d.Drop = &Drop{Reason: "gopher/too_few_words", Value: []string{"", fmt.Sprint(i)}[i%2], DupOf: []string{"", "edge/00000"}[i%2]}
		}
		docs[i] = d
	}
	return docs
}

// testRealDocs is real text from the shared data cut into documents, with
// the other columns filled in; nil when the data is absent.
func testRealDocs(t testing.TB, limit int, dropped bool) []*Document {
	dir := filepath.Join("..", "..", "shared", "data", "clean_text")
	if _, err := os.Stat(dir); err != nil {
		t.Logf("shared data not found at %s: real-text cases skipped", dir)
		return nil
	}
	docs := realDocs(t, dir, limit)
	for i, d := range docs {
		d.URL = fmt.Sprintf("https://%s.example.org/page/%d", d.Source, i)
		d.Date = fmt.Sprintf("2024-%02d-%02dT00:00:00Z", 1+i%12, 1+i%28)
		d.Lang, d.LangScore = "en", 0.5+float64(i%50)/100
		if i%5 != 0 {
			d.Quality, d.HasQuality = float64(i%100)/100, true
		}
		d.Meta = fmt.Sprintf(`{"len":%d}`, len(d.Text))
		if dropped {
			d.Drop = &Drop{Reason: "dedup:minhash", Value: fmt.Sprint(i), DupOf: docs[i/2].ID}
		}
	}
	return docs
}

// docRecord builds the record batch of docs in DocSchema(dropped).
func docRecord(docs []*Document, dropped bool) arrow.Record {
	b := array.NewRecordBuilder(memory.DefaultAllocator, DocSchema(dropped))
	defer b.Release()
	for _, d := range docs {
		appendDoc(b, d, dropped)
	}
	return b.NewRecord()
}

// writeDocFile writes batches (a record batch each) to path with open and
// returns the file's info, DataBytes and all.
func writeDocFile(t testing.TB, path string, dropped bool, batches [][]*Document,
	open func(string, *arrow.Schema) (*IPCFile, error)) ShardInfo {
	t.Helper()
	info, err := writeDocFileErr(path, dropped, batches, open)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func writeDocFileErr(path string, dropped bool, batches [][]*Document,
	open func(string, *arrow.Schema) (*IPCFile, error)) (ShardInfo, error) {
	f, err := open(path, DocSchema(dropped))
	if err != nil {
		return ShardInfo{}, err
	}
	var data int64
	for _, docs := range batches {
		rec := docRecord(docs, dropped)
		err := f.Write(rec)
		rec.Release()
		if err != nil {
			f.Abort()
			return ShardInfo{}, err
		}
		for _, d := range docs {
			data += DocBytes(d)
		}
	}
	info, err := f.Commit()
	info.DataBytes = data
	return info, err
}

// wantDoc is what a reader gives back for d written with or without the
// dropped columns.
func wantDoc(d *Document, dropped bool) Document {
	w := *d
	if !dropped {
		w.Drop = nil
	}
	return w
}

func sameDoc(a, b Document) bool {
	if (a.Drop == nil) != (b.Drop == nil) || (a.Drop != nil && *a.Drop != *b.Drop) {
		return false
	}
	a.Drop, b.Drop = nil, nil
	return a == b
}

func checkDocs(t *testing.T, who string, got []*Document, want []*Document, dropped bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d documents, wrote %d", who, len(got), len(want))
	}
	for i := range got {
		if w := wantDoc(want[i], dropped); !sameDoc(*got[i], w) {
			t.Fatalf("%s: document %d:\n got %+v\nwant %+v", who, i, *got[i], w)
		}
	}
}

// drain reads every document of r.
func drain(t *testing.T, r interface{ Next() (*Document, error) }) []*Document {
	t.Helper()
	var out []*Document
	for {
		d, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
}

// arrowGoRecords reads every record batch of path with Arrow Go's reader.
func arrowGoRecords(t *testing.T, path string) (*arrow.Schema, []arrow.Record) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := ipc.NewFileReader(f, ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		t.Fatalf("%s: Arrow Go: %v", path, err)
	}
	defer r.Close()
	var recs []arrow.Record
	for i := 0; i < r.NumRecords(); i++ {
		rec, err := r.RecordAt(i)
		if err != nil {
			t.Fatalf("%s: Arrow Go: record batch %d: %v", path, i, err)
		}
		recs = append(recs, rec) // RecordAt's records are the caller's
	}
	return r.Schema(), recs
}

// bufferPrefixes lists the uncompressed-length prefix of every non-empty
// buffer of every record batch of a ZSTD-compressed file.
func bufferPrefixes(t *testing.T, path string, info ShardInfo) []int64 {
	t.Helper()
	s, err := openFastDocShard(path, info, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, blk := range s.blocks {
		meta := s.data[blk.offset+8 : blk.offset+int64(blk.metaLen)]
		rb, ok := fbRoot(meta).table(2)
		if !ok {
			t.Fatalf("%s: batch without header", path)
		}
		if _, ok := rb.table(3); !ok {
			t.Fatalf("%s: batch without compression", path)
		}
		body := s.data[blk.offset+int64(blk.metaLen):]
		start, n := rb.vec(2, 16)
		for j := 0; j < n; j++ {
			x := start + flatbuffers.UOffsetT(16*j)
			off, ln := rb.i64(x), rb.i64(x+8)
			if off%8 != 0 {
				t.Fatalf("%s: buffer %d at body offset %d, not 8-aligned", path, j, off)
			}
			if ln > 0 {
				out = append(out, int64(binary.LittleEndian.Uint64(body[off:])))
			}
		}
	}
	return out
}

// docCase is one layout of documents in record batches.
type docCase struct {
	name    string
	batches [][]*Document
}

func docCases(t *testing.T, dropped bool) []docCase {
	edge := edgeDocs(120, dropped)
	cases := []docCase{
		{"empty", nil},
		{"one-row", [][]*Document{edge[:1]}},
		{"edge", [][]*Document{edge[:1], edge[1:50], edge[50:51], edge[51:]}},
		{"zero-row-batch", [][]*Document{edge[:7], {}, edge[7:20]}},
		{"empty-strings", [][]*Document{{{ID: "", Text: ""}, {ID: "x"}, {}}}},
	}
	if real := testRealDocs(t, 400<<10, dropped); real != nil {
		var bs [][]*Document
		for i := 0; i < len(real); i += 97 {
			bs = append(bs, real[i:min(i+97, len(real))])
		}
		cases = append(cases, docCase{"real", bs})
	}
	return cases
}

// TestHandIPCReadsLikeArrowGo writes each case with the hand-written
// writer and with Arrow Go's, and checks that Arrow Go's reader sees the
// same schema (metadata included) and arrays in both, and that the
// document readers (DocShardReader, the fast reader, DirReader both ways)
// give back exactly the documents written.
func TestHandIPCReadsLikeArrowGo(t *testing.T) {
	for _, dropped := range []bool{false, true} {
		for _, c := range docCases(t, dropped) {
			t.Run(fmt.Sprintf("%s/dropped=%v", c.name, dropped), func(t *testing.T) {
				dir := t.TempDir()
				hand := filepath.Join(dir, "hand.arrow")
				ref := filepath.Join(t.TempDir(), "arrowgo.arrow")
				info := writeDocFile(t, hand, dropped, c.batches, CreateIPCFile)
				writeDocFile(t, ref, dropped, c.batches, createArrowGoIPCFile)
				var all []*Document
				for _, b := range c.batches {
					all = append(all, b...)
				}
				if info.Rows != int64(len(all)) {
					t.Fatalf("info says %d rows, wrote %d", info.Rows, len(all))
				}

				hs, hrecs := arrowGoRecords(t, hand)
				rs, rrecs := arrowGoRecords(t, ref)
				if !hs.Equal(rs) || !hs.Metadata().Equal(rs.Metadata()) {
					t.Fatalf("schema %s, Arrow Go writes %s", hs, rs)
				}
				if v, _ := hs.Metadata().GetValue("smelt.format"); v != "documents/v1" {
					t.Fatalf("smelt.format metadata %q", v)
				}
				if len(hrecs) != len(rrecs) || len(hrecs) != len(c.batches) {
					t.Fatalf("%d record batches, Arrow Go's file %d, wrote %d", len(hrecs), len(rrecs), len(c.batches))
				}
				for i := range hrecs {
					for k := 0; k < int(hrecs[i].NumCols()); k++ {
						a, b := hrecs[i].Column(k), rrecs[i].Column(k)
						if !array.Equal(a, b) || a.NullN() != b.NullN() {
							t.Fatalf("batch %d column %s: %v, Arrow Go's file %v", i, hs.Field(k).Name, a, b)
						}
					}
					hrecs[i].Release()
					rrecs[i].Release()
				}

				r, err := OpenDocShard(hand)
				if err != nil {
					t.Fatal(err)
				}
				checkDocs(t, "DocShardReader", drain(t, r), all, dropped)
				r.Close()

				fs, err := openFastDocShard(hand, info, true, nil)
				if err != nil {
					t.Fatalf("fast reader refuses the file: %v", err)
				}
				checkDocs(t, "fast reader", drain(t, fs), all, dropped)

				if err := WriteManifest(dir, &Manifest{Kind: KindDocuments, Stage: "test", Shards: []ShardInfo{info}, Totals: SumShards([]ShardInfo{info})}); err != nil {
					t.Fatal(err)
				}
				checkDocs(t, "DirReader (fast)", readDocsVia(t, true, dir), all, dropped)
				checkDocs(t, "DirReader (Arrow)", readDocsVia(t, false, dir), all, dropped)
			})
		}
	}
}

// TestHandIPCSlicedArrays writes record batches whose arrays are slices at
// odd offsets (their offsets not starting at 0, their validity bitmaps
// not byte-aligned), as filtering a shard's rows can make them, and
// checks every reader gets the sliced rows.
func TestHandIPCSlicedArrays(t *testing.T) {
	docs := edgeDocs(64, true)
	rec := docRecord(docs, true)
	defer rec.Release()
	dir := t.TempDir()
	path := filepath.Join(dir, "sliced.arrow")
	f, err := CreateIPCFile(path, DocSchema(true))
	if err != nil {
		t.Fatal(err)
	}
	var want []*Document
	var data int64
	for _, s := range [][2]int64{{5, 30}, {3, 4}, {13, 13}, {17, 64}, {0, 1}} {
		part := rec.NewSlice(s[0], s[1])
		if err := f.Write(part); err != nil {
			t.Fatal(err)
		}
		part.Release()
		for _, d := range docs[s[0]:s[1]] {
			want = append(want, d)
			data += DocBytes(d)
		}
	}
	info, err := f.Commit()
	if err != nil {
		t.Fatal(err)
	}
	info.DataBytes = data
	r, err := OpenDocShard(path)
	if err != nil {
		t.Fatal(err)
	}
	checkDocs(t, "DocShardReader", drain(t, r), want, true)
	r.Close()
	fs, err := openFastDocShard(path, info, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkDocs(t, "fast reader", drain(t, fs), want, true)
}

// TestHandIPCDeterministic writes the same batches eight times, four at
// once, and wants the same bytes each time; and a buffer that zstd does
// not shrink (a one-row batch's 8-byte float column) is stored as it is,
// behind the prefix -1, while the text is compressed.
func TestHandIPCDeterministic(t *testing.T) {
	docs := testRealDocs(t, 300<<10, true)
	if docs == nil {
		docs = edgeDocs(300, true)
	}
	batches := [][]*Document{docs[:1], docs[1 : len(docs)/2], docs[len(docs)/2:]}
	dir := t.TempDir()
	sums := make([][32]byte, 8)
	infos := make([]ShardInfo, 8)
	var wg sync.WaitGroup
	for round := 0; round < 2; round++ {
		for i := round * 4; i < round*4+4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				path := filepath.Join(dir, fmt.Sprintf("d%d.arrow", i))
				info, err := writeDocFileErr(path, true, batches, CreateIPCFile)
				if err != nil {
					t.Error(err)
					return
				}
				infos[i] = info
				b, err := os.ReadFile(path)
				if err != nil {
					t.Error(err)
					return
				}
				sums[i] = sha256.Sum256(b)
			}()
		}
		wg.Wait()
	}
	for i := range sums {
		if sums[i] != sums[0] {
			t.Fatalf("write %d gave different bytes from write 0", i)
		}
	}
	var raw, comp int
	for _, p := range bufferPrefixes(t, filepath.Join(dir, "d0.arrow"), infos[0]) {
		if p == -1 {
			raw++
		} else {
			comp++
		}
	}
	if raw == 0 || comp == 0 {
		t.Fatalf("%d buffers stored as they are and %d compressed: want both", raw, comp)
	}
}

// TestHandIPCFallsBackForOtherSchemas: a schema with a column the hand
// writer does not cover still gets a readable file, through Arrow Go.
func TestHandIPCFallsBackForOtherSchemas(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64}}, nil)
	if _, ok := handFields(sc); ok {
		t.Fatal("int64 column taken by the hand writer")
	}
	if _, ok := handFields(DocSchema(true)); !ok {
		t.Fatal("document schema not taken by the hand writer")
	}
	path := filepath.Join(t.TempDir(), "n.arrow")
	f, err := CreateIPCFile(path, sc)
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewInt64Builder(memory.DefaultAllocator)
	b.AppendValues([]int64{1, 2, 3}, nil)
	col := b.NewArray()
	rec := array.NewRecord(sc, []arrow.Array{col}, 3)
	if err := f.Write(rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	col.Release()
	b.Release()
	if _, err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	_, recs := arrowGoRecords(t, path)
	if len(recs) != 1 || recs[0].Column(0).(*array.Int64).Value(2) != 3 {
		t.Fatalf("read back %v", recs)
	}
	recs[0].Release()
}

// TestHandIPCRefusesOtherRecords: a batch whose schema is not the file's
// is an error naming the file, and the file is not published.
func TestHandIPCRefusesOtherRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.arrow")
	f, err := CreateIPCFile(path, DocSchema(false))
	if err != nil {
		t.Fatal(err)
	}
	rec := docRecord(edgeDocs(3, true), true)
	defer rec.Release()
	if err := f.Write(rec); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("dropped-schema batch into a kept-schema file: %v", err)
	}
	f.Abort()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("aborted file exists: %v", err)
	}
}

// TestArrowJSReadsHandIPCEdgeCases: apache-arrow JS reads the edge cases
// (one-row batches with buffers stored as they are, an empty file, empty
// strings, null quality) as written.
func TestArrowJSReadsHandIPCEdgeCases(t *testing.T) {
	read := arrowJS(t)
	var files []string
	var want [][]*Document
	dir := t.TempDir()
	for _, c := range docCases(t, true) {
		if c.name == "empty" || c.name == "real" {
			continue // Arrow JS builds no columns for a file without batches
		}
		path := filepath.Join(dir, c.name+".arrow")
		writeDocFile(t, path, true, c.batches, CreateIPCFile)
		files = append(files, path)
		var all []*Document
		for _, b := range c.batches {
			all = append(all, b...)
		}
		want = append(want, all)
	}
	for fi, s := range read(files...) {
		docs := want[fi]
		if s.Rows != len(docs) {
			t.Fatalf("%s: Arrow JS reads %d rows, wrote %d", s.File, s.Rows, len(docs))
		}
		if s.Metadata["smelt.format"] != "documents/v1" {
			t.Fatalf("%s: metadata %v", s.File, s.Metadata)
		}
		cols := map[string][]string{}
		for _, name := range []string{ColID, ColSource, ColURL, ColDate, ColLang, ColText, ColMeta, ColReason, ColRuleValue, ColDupOf} {
			cols[name] = jsColumn[string](t, s, name)
		}
		scores := jsColumn[float64](t, s, ColLangScore)
		quals := jsColumn[*float64](t, s, ColQuality)
		for i, d := range docs {
			var dr Drop
			if d.Drop != nil {
				dr = *d.Drop
			}
			got := []string{cols[ColID][i], cols[ColSource][i], cols[ColURL][i], cols[ColDate][i], cols[ColLang][i], cols[ColText][i], cols[ColMeta][i], cols[ColReason][i], cols[ColRuleValue][i], cols[ColDupOf][i]}
			exp := []string{d.ID, d.Source, d.URL, d.Date, d.Lang, d.Text, d.Meta, dr.Reason, dr.Value, dr.DupOf}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", exp) || scores[i] != d.LangScore {
				t.Fatalf("%s row %d: Arrow JS reads %q %v, want %q %v", s.File, i, got, scores[i], exp, d.LangScore)
			}
			if (quals[i] != nil) != d.HasQuality || (d.HasQuality && *quals[i] != d.Quality) {
				t.Fatalf("%s row %d: quality %v, want %v (has=%v)", s.File, i, quals[i], d.Quality, d.HasQuality)
			}
		}
	}
}

// TestHandIPCNullStrings: utf8 columns with nulls (which smelt's writers
// never make, but a shard written by another tool may hold, and a
// takedown copies), sliced at an odd offset, read back by Arrow Go as the
// same arrays as from Arrow Go's own file.
func TestHandIPCNullStrings(t *testing.T) {
	sc := DocSchema(false)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for i := 0; i < 29; i++ {
		for k, f := range b.Fields() {
			switch fb := f.(type) {
			case *array.StringBuilder:
				if (i+k)%3 == 0 {
					fb.AppendNull()
				} else {
					fb.Append(fmt.Sprintf("v%d-%d-ü", i, k))
				}
			case *array.Float64Builder:
				if (i+k)%4 == 0 {
					fb.AppendNull()
				} else {
					fb.Append(float64(i) / 3)
				}
			}
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	dir := t.TempDir()
	var read [2][]arrow.Record
	for j, open := range []func(string, *arrow.Schema) (*IPCFile, error){CreateIPCFile, createArrowGoIPCFile} {
		path := filepath.Join(dir, fmt.Sprint(j, ".arrow"))
		f, err := open(path, sc)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range [][2]int64{{0, 29}, {3, 20}, {11, 12}} {
			part := rec.NewSlice(s[0], s[1])
			if err := f.Write(part); err != nil {
				t.Fatal(err)
			}
			part.Release()
		}
		if _, err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		_, read[j] = arrowGoRecords(t, path)
	}
	if len(read[0]) != 3 || len(read[1]) != 3 {
		t.Fatalf("%d and %d batches, want 3", len(read[0]), len(read[1]))
	}
	nulls := 0
	for i := range read[0] {
		for k := 0; k < int(read[0][i].NumCols()); k++ {
			a, b := read[0][i].Column(k), read[1][i].Column(k)
			if !array.Equal(a, b) || a.NullN() != b.NullN() {
				t.Fatalf("batch %d column %d: %v, Arrow Go's file %v", i, k, a, b)
			}
			if _, ok := a.(*array.String); ok {
				nulls += a.NullN()
			}
		}
		read[0][i].Release()
		read[1][i].Release()
	}
	if nulls == 0 {
		t.Fatal("no null strings read back")
	}
}

// TestPolarsReadsHandIPC: Polars (nodejs-polars, installed under
// export/testdata/node as export's reader tests install it) reads every
// case the same from the hand-written file as from Arrow Go's, and the
// values are the documents written.
func TestPolarsReadsHandIPC(t *testing.T) {
	modDir, err := filepath.Abs(filepath.Join("..", "export", "testdata", "node"))
	if err != nil {
		t.Fatal(err)
	}
	node, skip := nodepkg.Install(modDir, "the Polars check of document shards",
		"nodejs-polars/package.json", "nodejs-polars-linux-x64-gnu/package.json")
	if node == "" {
		t.Skip(skip)
	}
	dir := t.TempDir()
	var files []string
	var want [][]*Document
	for _, c := range docCases(t, true) {
		var all []*Document
		for _, b := range c.batches {
			all = append(all, b...)
		}
		for _, w := range []struct {
			suffix string
			open   func(string, *arrow.Schema) (*IPCFile, error)
		}{{".arrow", CreateIPCFile}, {".arrowgo.arrow", createArrowGoIPCFile}} {
			path := filepath.Join(dir, c.name+w.suffix)
			writeDocFile(t, path, true, c.batches, w.open)
			files = append(files, path)
			want = append(want, all)
		}
	}
	script, err := filepath.Abs(filepath.Join("testdata", "polars", "read.cjs"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), node, append([]string{script, filepath.Join(modDir, "node_modules")}, files...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node read.cjs: %v\n%s", err, stderr.String())
	}
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	if len(lines) != len(files) {
		t.Fatalf("read.cjs printed %d lines for %d files", len(lines), len(files))
	}
	for i := 0; i < len(lines); i += 2 {
		hand, ref := lines[i], lines[i+1]
		var h struct {
			File    string           `json:"file"`
			Rows    int              `json:"rows"`
			Records []map[string]any `json:"records"`
		}
		if err := json.Unmarshal(hand, &h); err != nil {
			t.Fatalf("read.cjs output: %v", err)
		}
		// The same values from Arrow Go's file (its name aside).
		if a, b := bytes.SplitN(hand, []byte(`"rows"`), 2)[1], bytes.SplitN(ref, []byte(`"rows"`), 2)[1]; !bytes.Equal(a, b) {
			t.Fatalf("%s: Polars reads it differently from Arrow Go's file", h.File)
		}
		docs := want[i]
		if h.Rows != len(docs) || len(h.Records) != len(docs) {
			t.Fatalf("%s: Polars reads %d rows, wrote %d", h.File, h.Rows, len(docs))
		}
		for r, d := range docs {
			rec := h.Records[r]
			var dr Drop
			if d.Drop != nil {
				dr = *d.Drop
			}
			for col, v := range map[string]string{ColID: d.ID, ColSource: d.Source, ColURL: d.URL, ColDate: d.Date, ColLang: d.Lang,
				ColText: d.Text, ColMeta: d.Meta, ColReason: dr.Reason, ColRuleValue: dr.Value, ColDupOf: dr.DupOf} {
				if rec[col] != v {
					t.Fatalf("%s row %d: Polars reads %s=%q, want %q", h.File, r, col, rec[col], v)
				}
			}
			if rec[ColLangScore] != d.LangScore {
				t.Fatalf("%s row %d: lang_score %v, want %v", h.File, r, rec[ColLangScore], d.LangScore)
			}
			if q, ok := rec[ColQuality].(float64); ok != d.HasQuality || (ok && q != d.Quality) {
				t.Fatalf("%s row %d: quality %v, want %v (has=%v)", h.File, r, rec[ColQuality], d.Quality, d.HasQuality)
			}
		}
	}
}
