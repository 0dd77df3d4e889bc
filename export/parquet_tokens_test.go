package export

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
)

// smallVocabTokens writes token shards for a 300-id vocabulary (9-bit
// dictionary indices) from the real corpus's GPT-2 ids, with an empty
// document every 7th.
func smallVocabTokens(t *testing.T, c *corpus) string {
	t.Helper()
	dir := t.TempDir()
	tok := shards.TokenizerInfo{Name: "tiny", VocabSize: 300, EOT: 299}
	err := writeTokenDir(dir, shards.TokenWriterOptions{Tokenizer: tok, TargetBytes: 64 << 10}, func(w *shards.TokenWriter) error {
		for i, d := range readTokenDocs(t, c.tokens[c.sources[0]]) {
			var ids []uint32
			if i%7 != 3 {
				for _, x := range d.tokens {
					ids = append(ids, x%300)
				}
			}
			if err := w.Write(d.id, d.source, ids); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestParquetTokensReadBack reads token Parquet exports back with Arrow's
// own Parquet reader and checks every document's id, source and ids, in
// order, the Arrow schema and the encodings: for 16-bit (GPT-2), 17-bit
// (cl100k_base, 32-bit shards) and 9-bit dictionary indices with empty
// documents, each zstd, snappy and uncompressed, cut into many row groups
// and pages.
func TestParquetTokensReadBack(t *testing.T) {
	// Not parallel: it sets the package's page size, which every other
	// Parquet export reads (the race detector saw TestDeterministic's
	// export read it while this wrote it, and its files differ).
	c := realCorpus(t)
	defer func(n int) { tokenPageIDs = n }(tokenPageIDs)
	tokenPageIDs = 700
	dirs := map[string]string{
		"gpt2":   c.tokens[c.sources[0]],
		"cl100k": wideTokens(t, c),
		"tiny":   smallVocabTokens(t, c),
	}
	for _, name := range []string{"gpt2", "cl100k", "tiny"} {
		dir := dirs[name]
		want := readTokenDocs(t, dir)
		m := mustManifest(t, dir)
		for ci, comp := range []string{"zstd", "snappy", "none"} {
			// Every vocabulary and every compression by default (the
			// diagonal: gpt2/zstd, cl100k/snappy, tiny/none); all nine
			// pairs under SMELT_THOROUGH.
			if !testutil.IsThorough() && ci != slices.Index([]string{"gpt2", "cl100k", "tiny"}, name) {
				continue
			}
			t.Run(name+"/"+comp, func(t *testing.T) {
				in, err := OpenInput(name, dir, 0)
				if err != nil {
					t.Fatal(err)
				}
				out := t.TempDir()
				export(t, []*Input{in}, out, Options{Format: FormatParquet, Compression: comp, RowGroupBytes: 16 << 10})
				var got []shardDoc
				groups, pages := 0, 0
				for _, f := range globbed(t, out, "*.parquet") {
					docs, g, p := readTokenParquet(t, f, m.Tokenizer, comp)
					got = append(got, docs...)
					groups += g
					pages += p
				}
				if len(got) != len(want) {
					t.Fatalf("%d documents back, exported %d", len(got), len(want))
				}
				empty := 0
				for i := range want {
					if got[i].id != want[i].id || got[i].source != want[i].source || fmt.Sprint(got[i].tokens) != fmt.Sprint(want[i].tokens) {
						t.Fatalf("document %d: back as %s/%s with %d ids, exported %s/%s with %d", i, got[i].source, got[i].id, len(got[i].tokens), want[i].source, want[i].id, len(want[i].tokens))
					}
					if len(want[i].tokens) == 0 {
						empty++
					}
				}
				if name == "tiny" && empty == 0 {
					t.Fatal("no empty document in the test data")
				}
				if groups < 2*len(m.Shards) || pages < 2*groups {
					t.Fatalf("%d row groups and %d token pages for %d shards: not cut", groups, pages, len(m.Shards))
				}
			})
		}
	}
}

// readTokenParquet reads one token Parquet file with pqarrow and checks
// its schema, metadata and the input_ids column's encoding.
func readTokenParquet(t *testing.T, path string, tok *shards.TokenizerInfo, comp string) (docs []shardDoc, groups, pages int) {
	t.Helper()
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	codec := parquetCodec(comp)
	for g := 0; g < pf.NumRowGroups(); g++ {
		rg := pf.MetaData().RowGroup(g)
		cc, err := rg.ColumnChunk(2)
		if err != nil {
			t.Fatal(err)
		}
		if cc.Compression() != codec || !cc.HasDictionaryPage() {
			t.Fatalf("%s row group %d: input_ids %v, dictionary %v", path, g, cc.Compression(), cc.HasDictionaryPage())
		}
		dict := false
		for _, e := range cc.Encodings() {
			dict = dict || e == parquet.Encodings.RLEDict
		}
		if !dict {
			t.Fatalf("%s: input_ids encodings %v", path, cc.Encodings())
		}
		pr, err := pf.RowGroup(g).GetColumnPageReader(2)
		if err != nil {
			t.Fatal(err)
		}
		for pr.Next() {
			if p, ok := pr.Page().(*file.DataPageV1); ok {
				if parquet.Encoding(p.Encoding()) != parquet.Encodings.RLEDict {
					t.Fatalf("%s: token page encoding %v", path, p.Encoding())
				}
				pages++
			}
		}
		if err := pr.Err(); err != nil {
			t.Fatal(err)
		}
		groups++
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 12}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	// Arrow Go reads the list's item back as "list", nullable (as for
	// files its pqarrow writer writes); names, types and the schema's
	// metadata must be what smelt wrote.
	sc, err := fr.Schema()
	if err != nil {
		t.Fatal(err)
	}
	want := ParquetTokenSchema(tok)
	for i, f := range want.Fields() {
		g := sc.Field(i)
		wt, gt := f.Type, g.Type
		if l, ok := wt.(*arrow.ListType); ok {
			wt = l.Elem()
			if gl, ok := gt.(*arrow.ListType); ok {
				gt = gl.Elem()
			}
		}
		if g.Name != f.Name || !arrow.TypeEqual(wt, gt) {
			t.Fatalf("%s: field %d read back as %v, want %v", path, i, g, f)
		}
	}
	if !sc.Metadata().Equal(want.Metadata()) {
		t.Fatalf("%s: metadata %v, want %v", path, sc.Metadata(), want.Metadata())
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer tbl.Release()
	rr := array.NewTableReader(tbl, 1<<12)
	defer rr.Release()
	for rr.Next() {
		rec := rr.Record()
		ids := rec.Column(0).(*array.String)
		srcs := rec.Column(1).(*array.String)
		lists := rec.Column(2).(*array.List)
		ns := rec.Column(3).(*array.Int64)
		for i := 0; i < int(rec.NumRows()); i++ {
			lo, hi := lists.ValueOffsets(i)
			var toks []uint32
			switch v := lists.ListValues().(type) {
			case *array.Uint16:
				for _, x := range v.Uint16Values()[lo:hi] {
					toks = append(toks, uint32(x))
				}
			case *array.Uint32:
				toks = append(toks, v.Uint32Values()[lo:hi]...)
			default:
				t.Fatalf("%s: ids are %v", path, lists.ListValues().DataType())
			}
			if ns.Value(i) != int64(len(toks)) {
				t.Fatalf("%s: n_tokens %d for %d ids", path, ns.Value(i), len(toks))
			}
			docs = append(docs, shardDoc{id: ids.Value(i), source: srcs.Value(i), tokens: toks})
		}
	}
	return docs, groups, pages
}
