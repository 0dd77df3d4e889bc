package export

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/klauspost/compress/zstd"
	"github.com/smelt-dev/smelt/ingest"
	"github.com/smelt-dev/smelt/shards"
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
		checkRowGroups(t, out, c.docs[s], 32<<10)
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

// checkRowGroups checks the documents Parquet files an export of the
// document shards in dir wrote into out (part-NNNNN.parquet, one per
// shard): zstd, row-aligned content-defined pages, and row groups cut at
// the first page group that reaches limit (checkDocLayout).
func checkRowGroups(t *testing.T, out, dir string, limit int64) {
	t.Helper()
	m, err := shards.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, info := range m.Shards {
		r, err := shards.OpenDocShard(filepath.Join(dir, info.Name))
		if err != nil {
			t.Fatal(err)
		}
		var list []*shards.Document
		for {
			d, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			c := *d
			list = append(list, &c)
		}
		r.Close()
		checkDocLayout(t, filepath.Join(out, fmt.Sprintf("part-%05d.parquet", i)), list, limit, compress.Codecs.Zstd)
	}
}
