package export

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/klauspost/compress/zstd"
	"github.com/smelt-dev/smelt/ingest"
)

// TestParquetReingest exports documents to Parquet, ingests the export
// again with smelt ingest, and checks that every document comes back: the
// same text, url, date and language, with the id ingest gives a record
// (the source name, then the record's own id).
func TestParquetReingest(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	c := realCorpus(t)
	for _, s := range c.sources {
		want := readDocs(t, c.docs[s])
		out := t.TempDir()
		export(t, c.docInputs(t)[indexOf(c.sources, s):][:1], out, Options{Format: FormatParquet, RowGroupBytes: 32 << 10})
		checkRowGroups(t, globbed(t, out, "*.parquet"), 32<<10)
		back := t.TempDir()
		if _, err := ingest.Run(context.Background(), globbed(t, out, "*.parquet"), back, ingest.Options{Source: s, Workers: 2}); err != nil {
			t.Fatal(err)
		}
		got := readDocs(t, back)
		if len(got) != len(want) {
			t.Fatalf("%s: %d documents back from Parquet, exported %d", s, len(got), len(want))
		}
		for i, w := range want {
			g := got[i]
			if g.ID != s+"/"+w.ID || g.Text != w.Text || g.URL != w.URL || g.Date != w.Date || g.Lang != w.Lang || g.Source != w.Source {
				t.Fatalf("%s document %d: back as id=%q url=%q date=%q lang=%q (%d bytes of text), exported id=%q url=%q date=%q lang=%q (%d bytes)",
					s, i, g.ID, g.URL, g.Date, g.Lang, len(g.Text), w.ID, w.URL, w.Date, w.Lang, len(w.Text))
			}
		}
	}
}

// TestJSONLDolma decodes both JSONL compressions line by line and checks
// every field against the documents, and that smelt ingest reads the
// export back.
func TestJSONLDolma(t *testing.T) {
	c := realCorpus(t)
	var want = readDocs(t, func() []string {
		var d []string
		for _, s := range c.sources {
			d = append(d, c.docs[s])
		}
		return d
	}()...)
	for _, comp := range []string{"zstd", "gzip"} {
		out := t.TempDir()
		export(t, c.docInputs(t), out, Options{Format: FormatJSONL, Compression: comp})
		pat := "*.jsonl.zst"
		if comp == "gzip" {
			pat = "*.jsonl.gz"
		}
		files := globbed(t, out, pat)
		k := 0
		for _, f := range files {
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			var sc *bufio.Scanner
			if comp == "gzip" {
				zr, err := gzip.NewReader(fh)
				if err != nil {
					t.Fatal(err)
				}
				sc = bufio.NewScanner(zr)
			} else {
				zr, err := zstd.NewReader(fh)
				if err != nil {
					t.Fatal(err)
				}
				defer zr.Close()
				sc = bufio.NewScanner(zr)
			}
			sc.Buffer(nil, 64<<20)
			for sc.Scan() {
				var d DolmaDoc
				if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				w := want[k]
				if d.ID != w.ID || d.Text != w.Text || d.Source != w.Source || d.Created != w.Date || d.Metadata.URL != w.URL ||
					d.Metadata.Lang != w.Lang || d.Metadata.LangScore != w.LangScore || (d.Metadata.Quality != nil) != w.HasQuality {
					t.Fatalf("%s line for %s: %+v", f, w.ID, d.Metadata)
				}
				if w.Meta != "" && !json.Valid(d.Metadata.Meta) {
					t.Fatalf("%s: meta of %s is not JSON", f, w.ID)
				}
				k++
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
			fh.Close()
		}
		if k != len(want) {
			t.Fatalf("%s: %d lines, %d documents", comp, k, len(want))
		}
		back := t.TempDir()
		if _, err := ingest.Run(context.Background(), files, back, ingest.Options{Source: "again", Workers: 2}); err != nil {
			t.Fatal(err)
		}
		got := readDocs(t, back)
		if len(got) != len(want) {
			t.Fatalf("%s: ingest reads %d documents back, exported %d", comp, len(got), len(want))
		}
		for i := range got {
			if got[i].Text != want[i].Text || got[i].ID != "again/"+want[i].ID {
				t.Fatalf("%s: document %d back as %q", comp, i, got[i].ID)
			}
		}
	}
}

// checkRowGroups checks that Parquet files are zstd-compressed and cut
// into row groups of about limit bytes of data.
func checkRowGroups(t *testing.T, files []string, limit int64) {
	t.Helper()
	groups := 0
	for _, f := range files {
		pf, err := file.OpenParquetFile(f, false)
		if err != nil {
			t.Fatal(err)
		}
		md := pf.MetaData()
		for i := 0; i < pf.NumRowGroups(); i++ {
			rg := md.RowGroup(i)
			var n int64
			for c := 0; c < rg.NumColumns(); c++ {
				cc, err := rg.ColumnChunk(c)
				if err != nil {
					t.Fatal(err)
				}
				if cc.Compression() != compress.Codecs.Zstd {
					t.Fatalf("%s row group %d column %d: compression %v", f, i, c, cc.Compression())
				}
				n += cc.TotalUncompressedSize()
			}
			// A row group ends with the row that reaches the limit.
			if n > 4*limit+(1<<20) {
				t.Fatalf("%s row group %d: %d bytes for a limit of %d", f, i, n, limit)
			}
			groups++
		}
		pf.Close()
	}
	if groups <= len(files) {
		t.Fatalf("%d row groups in %d files: not cut", groups, len(files))
	}
}
