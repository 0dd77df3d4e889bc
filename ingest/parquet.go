package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/smelt-dev/smelt/store"
)

// parquetBatch is the number of rows decoded at a time: memory is bounded
// by one batch of the selected columns.
const parquetBatch = 256

// parquetReader reads a text column (and optional id, url and date columns)
// from a Parquet file batch by batch with Arrow's pqarrow reader.
type parquetReader struct {
	path    string
	pf      *file.Reader
	rr      pqarrow.RecordReader
	rec     arrow.Record
	i       int
	row     int64
	text    int // column positions in the selected record
	id      int
	url     int
	date    int
	names   []string
	max     int64
	emptyOK bool
	done    bool
	// failed is the read error after which every remaining row (by the
	// file's row count) is reported as lost.
	failed error
}

// framing: the file's own row count (its footer), or the one "no rows"
// report of an empty file.
func (r *parquetReader) framing() (int64, error) { return max(r.pf.NumRows(), 1), nil }

// openParquet opens path; name is what records and errors call it (a URL
// without its credentials).
func openParquet(ctx context.Context, path, name string, opt ReaderOptions) (r *parquetReader, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("ingest: %s: parquet: the decoder failed on damaged data: %v", name, p)
		}
	}()
	pf, size, err := openParquetFile(ctx, path)
	path = name
	if err != nil {
		return nil, fmt.Errorf("ingest: %s: parquet: %w", path, err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: parquetBatch}, memory.DefaultAllocator)
	if err != nil {
		pf.Close()
		return nil, fmt.Errorf("ingest: %s: parquet: %w", path, err)
	}
	schema, err := fr.Schema()
	if err != nil {
		pf.Close()
		return nil, fmt.Errorf("ingest: %s: parquet schema: %w", path, err)
	}
	r = &parquetReader{path: path, pf: pf, text: -1, id: -1, url: -1, date: -1, max: opt.maxRecord()}
	var cols []int
	pick := func(names ...string) int {
		for _, n := range names {
			if idx := schema.FieldIndices(n); len(idx) == 1 {
				cols = append(cols, idx[0])
				r.names = append(r.names, n)
				return len(cols) - 1
			}
		}
		return -1
	}
	if r.text = pick(opt.textField()); r.text < 0 {
		pf.Close()
		names := make([]string, 0, schema.NumFields())
		for _, f := range schema.Fields() {
			names = append(names, f.Name)
		}
		return nil, &ConfigError{File: path, Err: fmt.Errorf("parquet file has no column %q (its columns: %s): set the text field (--text-field)",
			opt.textField(), strings.Join(names, ", "))}
	}
	switch t := schema.Field(cols[r.text]).Type; t.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW, arrow.BINARY, arrow.LARGE_BINARY:
	default:
		pf.Close()
		return nil, &ConfigError{File: path, Err: fmt.Errorf("parquet column %q is %s, not a string column: set the text field (--text-field) to the column that holds the text",
			opt.textField(), t)}
	}
	r.id = pick(opt.idField())
	r.url = pick("url", "URL")
	r.date = pick("date", "timestamp", "created", "crawl_date")
	// GetRecordReader reads the column chunks' metadata in goroutines of
	// its own, where a panic on a damaged footer cannot be recovered (found
	// by fuzzing: a nil column chunk; a negative chunk length): check what
	// it relies on here first.
	for rg := 0; rg < pf.NumRowGroups(); rg++ {
		md := pf.MetaData().RowGroup(rg)
		for _, c := range cols {
			col, err := md.ColumnChunk(c)
			if err == nil {
				start, n := col.DataPageOffset(), col.TotalCompressedSize()
				if col.HasDictionaryPage() && col.DictionaryPageOffset() > 0 && start > col.DictionaryPageOffset() {
					start = col.DictionaryPageOffset()
				}
				if start < 0 || n < 0 || (size >= 0 && (start > size || n > size)) {
					err = fmt.Errorf("column chunk at offset %d of length %d in a file of %d bytes", start, n, size)
				}
			}
			if err != nil {
				pf.Close()
				return nil, fmt.Errorf("ingest: %s: parquet row group %d column %d: %w", path, rg, c, err)
			}
		}
	}
	rr, err := fr.GetRecordReader(context.Background(), cols, nil)
	if err != nil {
		pf.Close()
		return nil, fmt.Errorf("ingest: %s: parquet: %w", path, err)
	}
	r.rr = rr
	if pf.NumRows() == 0 {
		r.emptyOK = false
	}
	return r, nil
}

// openParquetFile opens a Parquet file and returns its size (-1 when
// unknown). A local file is opened as a file; a remote object (a URL) is
// read with ranged requests at the offsets the decoder asks for (the
// footer first, then the selected column chunks), never downloaded whole.
func openParquetFile(ctx context.Context, path string) (pf *file.Reader, size int64, err error) {
	if !store.IsRemote(path) {
		if pf, err = file.OpenParquetFile(path, false); err != nil {
			return nil, 0, err
		}
		size = -1
		if fi, err := os.Stat(path); err == nil {
			size = fi.Size()
		}
		return pf, size, nil
	}
	f, err := openRemote(ctx, path)
	if err != nil {
		return nil, 0, err
	}
	defer func() {
		if pf == nil {
			f.Close() // also when the decoder panics (openParquet recovers)
		}
	}()
	if pf, err = file.NewParquetReader(f); err != nil {
		return nil, 0, err
	}
	return pf, f.Size(), nil
}

func (r *parquetReader) Close() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("ingest: %s: parquet: %v", r.path, p)
		}
	}()
	if r.rec != nil {
		r.rec.Release()
		r.rec = nil
	}
	r.rr.Release()
	return r.pf.Close()
}

// str reads a cell as text: strings as they are, other scalars formatted.
func str(col arrow.Array, i int) (string, bool) {
	if col.IsNull(i) {
		return "", false
	}
	switch c := col.(type) {
	case *array.String:
		return c.Value(i), true
	case *array.LargeString:
		return c.Value(i), true
	case *array.Binary:
		return string(c.Value(i)), true
	case *array.Int64:
		return strconv.FormatInt(c.Value(i), 10), true
	case *array.Int32:
		return strconv.FormatInt(int64(c.Value(i)), 10), true
	case *array.Timestamp:
		return c.Value(i).ToTime(c.DataType().(*arrow.TimestampType).Unit).UTC().Format("2006-01-02T15:04:05Z07:00"), true
	}
	return col.ValueStr(i), true
}

// Next reads the next row. Arrow's Parquet decoder can panic on damaged
// data (found by fuzzing: a nil page header); the panic becomes a
// parquet/read error for each row not read.
func (r *parquetReader) Next() (rec *Record, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.failed = fmt.Errorf("the Parquet decoder failed on damaged data: %v", p)
			r.rec, r.done = nil, true
			rec, err = r.Next()
		}
	}()
	return r.next()
}

func (r *parquetReader) next() (*Record, error) {
	for r.rec == nil || r.i >= int(r.rec.NumRows()) {
		if r.failed != nil && (r.row < r.pf.NumRows() || r.row == 0) {
			// Each row the footer counts and the file did not give is lost
			// (a file that counts none still gets its one error).
			row := r.row
			r.row++
			return nil, &RecordError{File: r.path, Offset: row, Kind: ErrParquetRead, Err: fmt.Errorf("row %d lost: %w", row, r.failed)}
		}
		if r.done {
			return nil, io.EOF
		}
		if r.rec != nil {
			r.rec.Release()
			r.rec = nil
		}
		if !r.rr.Next() {
			r.done = true
			if err := r.rr.Err(); err != nil && !errors.Is(err, io.EOF) {
				r.failed = err
				continue
			}
			if r.row < r.pf.NumRows() {
				// Found by fuzzing: a damaged file whose row groups hold
				// fewer rows than its footer counts, and no error said so.
				r.failed = fmt.Errorf("the file's footer counts %d rows but its row groups gave %d", r.pf.NumRows(), r.row)
				continue
			}
			if r.row == 0 {
				return nil, &RecordError{File: r.path, Kind: ErrEmptyFile, Err: errors.New("no rows")}
			}
			return nil, io.EOF
		}
		r.rec = r.rr.Record()
		r.rec.Retain()
		r.i = 0
	}
	i := r.i
	r.i++
	row := r.row
	r.row++
	rec := &Record{File: r.path, Offset: row, DataOffset: row, Kind: PayloadText, MaxBytes: r.max}
	if r.id >= 0 {
		rec.Key, _ = str(r.rec.Column(r.id), i)
	}
	if rec.Key == "" {
		rec.KeyFromPosition = true
		rec.Key = "row " + strconv.FormatInt(row, 10)
	}
	if r.url >= 0 {
		rec.URL, _ = str(r.rec.Column(r.url), i)
	}
	if r.date >= 0 {
		rec.Date, _ = str(r.rec.Column(r.date), i)
	}
	rec.Meta = map[string]any{"parquet_row": row}
	text, ok := str(r.rec.Column(r.text), i)
	if !ok {
		rec.Skip = SkipEmptyText
		return rec, nil
	}
	if int64(len(text)) > r.max {
		return nil, &RecordError{File: r.path, Offset: row, Kind: ErrRecordTooLarge, Err: fmt.Errorf("row %d text of %d bytes exceeds the %d-byte limit", row, len(text), r.max)}
	}
	rec.Body = []byte(text)
	return rec, nil
}
