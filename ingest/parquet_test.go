package ingest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
)

// writeParquet writes rows FineWeb-style (id, text, url, date) with small
// row groups so that reading crosses row groups and batches.
func writeParquet(t testing.TB, path string, rows int, textName string) {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.BinaryTypes.String},
		{Name: textName, Type: arrow.BinaryTypes.LargeString, Nullable: true},
		{Name: "url", Type: arrow.BinaryTypes.String},
		{Name: "date", Type: arrow.BinaryTypes.String},
		{Name: "token_count", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(schema, f, parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(300)), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := 0; i < rows; i++ {
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("<urn:uuid:%05d>", i))
		if i%100 == 99 {
			b.Field(1).(*array.LargeStringBuilder).AppendNull()
		} else {
			b.Field(1).(*array.LargeStringBuilder).Append(fmt.Sprintf("Document %d. Rivers carry water from high ground to the sea, shaping valleys.", i))
		}
		b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("https://example.org/%d", i))
		b.Field(3).(*array.StringBuilder).Append("2013-12-04T13:17:05Z")
		b.Field(4).(*array.Int64Builder).Append(int64(i))
	}
	rec := b.NewRecord()
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestParquet(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "fw.parquet")
	writeParquet(t, p, 1000, "text")
	ta := readAllRecords(t, p, FormatAuto, ReaderOptions{})
	if ta.fatal != nil || len(ta.errs) != 0 {
		t.Fatalf("fatal %v errors %v", ta.fatal, ta.errs)
	}
	if len(ta.docs) != 990 || ta.skips[SkipEmptyText] != 10 {
		t.Fatalf("docs %d skips %v", len(ta.docs), ta.skips)
	}
	for i, d := range ta.docs[:5] {
		if d.ID != fmt.Sprintf("test/<urn:uuid:%05d>", i) || d.URL != fmt.Sprintf("https://example.org/%d", i) ||
			!strings.HasPrefix(d.Text, fmt.Sprintf("Document %d.", i)) || d.Date != "2013-12-04T13:17:05Z" || d.Lang != "en" {
			t.Fatalf("doc %d: %+v", i, d)
		}
	}
	// A custom text column, and a clear error when the column is missing.
	p2 := filepath.Join(dir, "c.parquet")
	writeParquet(t, p2, 10, "content")
	if ta := readAllRecords(t, p2, FormatParquet, ReaderOptions{TextField: "content"}); len(ta.docs) != 10 {
		t.Fatalf("content column: docs %d", len(ta.docs))
	}
	if _, err := Open(p2, FormatParquet, ReaderOptions{}); err == nil || !strings.Contains(err.Error(), `no column "text"`) {
		t.Fatalf("missing column: %v", err)
	}
	// Not a parquet file.
	bad := writeTestFile(t, dir, "bad.parquet", []byte("PAR1 nothing useful"))
	if _, err := Open(bad, FormatParquet, ReaderOptions{}); err == nil || !strings.Contains(err.Error(), "bad.parquet") {
		t.Fatalf("bad file: %v", err)
	}
}
