package filter

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// EvalOptions says how to read eval sets.
type EvalOptions struct {
	// Fields are the JSONL keys or Parquet columns whose text is indexed,
	// in order ("text" when empty). A field may hold a string, a number or
	// a list of them (answer choices).
	Fields []string
	// IDField names the record id ("id"); records without one are known by
	// their line (JSONL, text) or row (Parquet).
	IDField string
	// MaxLineBytes caps a JSONL or text line (64 MiB).
	MaxLineBytes int
}

// EvalStats counts what AddEvalSet read.
type EvalStats struct {
	Files, Records int64
	// Bad counts records that could not be read (bad JSON, missing
	// fields); Errors holds the first few, with file and byte offset.
	Bad    int64
	Errors []string
}

const maxEvalErrors = 20

func (s *EvalStats) bad(msg string) {
	s.Bad++
	if len(s.Errors) < maxEvalErrors {
		s.Errors = append(s.Errors, msg)
	}
}

// EvalSetName returns the set name for a command-line argument: the part
// before "=" in NAME=PATH, else the file or directory name without its
// extensions.
func EvalSetName(arg string) (name, path string) {
	if k := strings.IndexByte(arg, '='); k > 0 {
		return arg[:k], arg[k+1:]
	}
	base := filepath.Base(filepath.Clean(arg))
	for _, ext := range []string{".gz", ".zst", ".jsonl", ".json", ".ndjson", ".parquet", ".txt", ".text"} {
		base = strings.TrimSuffix(base, ext)
	}
	return base, arg
}

// AddEvalSet reads one eval set (a file, or a directory of files read in
// name order) into b. JSONL (.jsonl/.json/.ndjson), Parquet (.parquet) and
// plain text (anything else: one record per non-empty line) are read,
// gzip or zstd compressed or not. Bad records are counted and skipped.
func AddEvalSet(ctx context.Context, b *IndexBuilder, name, path string, opt EvalOptions) (EvalStats, error) {
	var st EvalStats
	set, err := b.AddSet(name)
	if err != nil {
		return st, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return st, fmt.Errorf("decontam: eval set %s: %w", name, err)
	}
	files := []string{path}
	if fi.IsDir() {
		files = nil
		err := filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.HasPrefix(d.Name(), ".") && p != path {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.IsDir() {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return st, fmt.Errorf("decontam: eval set %s: %w", name, err)
		}
		sort.Strings(files)
		if len(files) == 0 {
			return st, fmt.Errorf("decontam: eval set %s: no files in %s", name, path)
		}
	}
	if len(opt.Fields) == 0 {
		opt.Fields = []string{"text"}
	}
	if opt.IDField == "" {
		opt.IDField = "id"
	}
	if opt.MaxLineBytes <= 0 {
		opt.MaxLineBytes = 64 << 20
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		prefix := ""
		if fi.IsDir() {
			rel, _ := filepath.Rel(path, f)
			prefix = rel + ":"
		}
		st.Files++
		if err := addEvalFile(ctx, b, set, f, prefix, opt, &st); err != nil {
			return st, err
		}
	}
	return st, nil
}

func evalKind(path string) string {
	n := strings.ToLower(filepath.Base(path))
	n = strings.TrimSuffix(strings.TrimSuffix(n, ".gz"), ".zst")
	switch {
	case strings.HasSuffix(n, ".jsonl"), strings.HasSuffix(n, ".json"), strings.HasSuffix(n, ".ndjson"):
		return "jsonl"
	case strings.HasSuffix(n, ".parquet"):
		return "parquet"
	}
	return "text"
}

// openDecompressed opens path, decompressing gzip or zstd by magic bytes.
func openDecompressed(path string) (io.Reader, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("decontam: %w", err)
	}
	br := bufio.NewReaderSize(f, 1<<20)
	head, _ := br.Peek(4)
	switch {
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		z, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("decontam: %s: gzip: %w", path, err)
		}
		return z, func() { z.Close(); f.Close() }, nil
	case len(head) == 4 && bytes.Equal(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		z, err := zstd.NewReader(br)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("decontam: %s: zstd: %w", path, err)
		}
		return z, func() { z.Close(); f.Close() }, nil
	}
	return br, func() { f.Close() }, nil
}

func addEvalFile(ctx context.Context, b *IndexBuilder, set int, path, prefix string, opt EvalOptions, st *EvalStats) error {
	kind := evalKind(path)
	if kind == "parquet" {
		return addEvalParquet(ctx, b, set, path, prefix, opt, st)
	}
	r, closeFn, err := openDecompressed(path)
	if err != nil {
		return err
	}
	defer closeFn()
	br := bufio.NewReaderSize(r, 1<<20)
	var off int64
	for line := 1; ; line++ {
		if line%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		data, err := readLine(br, opt.MaxLineBytes)
		start := off
		off += int64(len(data))
		if errors.Is(err, errLineTooLong) {
			st.bad(fmt.Sprintf("%s: line %d (byte %d): longer than %d bytes, skipped", path, line, start, opt.MaxLineBytes))
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("decontam: %s: byte %d: %w", path, start, err)
		}
		if t := bytes.TrimSpace(data); len(t) > 0 {
			if kind == "jsonl" {
				addJSONRecord(b, set, path, prefix, line, start, t, opt, st)
			} else {
				st.Records++
				if aerr := b.Add(set, prefix+"L"+strconv.Itoa(line), string(t)); aerr != nil {
					return aerr
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine reads one line (with its newline); a line over max bytes is
// consumed and reported as errLineTooLong without being buffered whole.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var out []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(out)+len(chunk) > max {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, err
			}
			return nil, errLineTooLong
		}
		out = append(out, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return out, err
	}
}

func addJSONRecord(b *IndexBuilder, set int, path, prefix string, line int, off int64, data []byte, opt EvalOptions, st *EvalStats) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		st.bad(fmt.Sprintf("%s: line %d (byte %d): %v", path, line, off, err))
		return
	}
	var fields []string
	for _, f := range opt.Fields {
		raw, ok := m[f]
		if !ok {
			continue
		}
		fields = appendJSONText(fields, raw)
	}
	if len(fields) == 0 {
		st.bad(fmt.Sprintf("%s: line %d (byte %d): none of the fields %s holds text", path, line, off, strings.Join(opt.Fields, ", ")))
		return
	}
	id := "L" + strconv.Itoa(line)
	if raw, ok := m[opt.IDField]; ok {
		var s string
		if json.Unmarshal(raw, &s) == nil && s != "" {
			id = s
		} else if n := strings.TrimSpace(string(raw)); n != "" && n != "null" && n[0] != '"' && n[0] != '{' && n[0] != '[' {
			id = n
		}
	}
	st.Records++
	if err := b.Add(set, prefix+id, fields...); err != nil {
		st.bad(fmt.Sprintf("%s: line %d (byte %d): %v", path, line, off, err))
	}
}

// appendJSONText appends the text of a string, number, or (nested) list.
func appendJSONText(dst []string, raw json.RawMessage) []string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return dst
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil && s != "" {
			dst = append(dst, s)
		}
	case '[':
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) == nil {
			for _, e := range list {
				dst = appendJSONText(dst, e)
			}
		}
	case '{', 'n', 't', 'f':
	default:
		dst = append(dst, string(raw))
	}
	return dst
}

func addEvalParquet(ctx context.Context, b *IndexBuilder, set int, path, prefix string, opt EvalOptions, st *EvalStats) error {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return fmt.Errorf("decontam: %s: parquet: %w", path, err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 256}, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("decontam: %s: parquet: %w", path, err)
	}
	schema, err := fr.Schema()
	if err != nil {
		return fmt.Errorf("decontam: %s: parquet schema: %w", path, err)
	}
	var cols []int
	var textCols []int // positions in cols
	idCol := -1
	for _, f := range opt.Fields {
		if idx := schema.FieldIndices(f); len(idx) == 1 {
			textCols = append(textCols, len(cols))
			cols = append(cols, idx[0])
		}
	}
	if len(textCols) == 0 {
		return fmt.Errorf("decontam: %s: parquet has none of the columns %s", path, strings.Join(opt.Fields, ", "))
	}
	if idx := schema.FieldIndices(opt.IDField); len(idx) == 1 {
		idCol = len(cols)
		cols = append(cols, idx[0])
	}
	rr, err := fr.GetRecordReader(ctx, cols, nil)
	if err != nil {
		return fmt.Errorf("decontam: %s: parquet: %w", path, err)
	}
	defer rr.Release()
	var row int64
	for rr.Next() {
		rec := rr.Record()
		for i := 0; i < int(rec.NumRows()); i++ {
			var fields []string
			for _, c := range textCols {
				fields = appendArrowText(fields, rec.Column(c), i)
			}
			id := "row " + strconv.FormatInt(row, 10)
			if idCol >= 0 {
				if s := appendArrowText(nil, rec.Column(idCol), i); len(s) == 1 && s[0] != "" {
					id = s[0]
				}
			}
			if len(fields) == 0 {
				st.bad(fmt.Sprintf("%s: row %d: none of the columns %s holds text", path, row, strings.Join(opt.Fields, ", ")))
			} else {
				st.Records++
				if err := b.Add(set, prefix+id, fields...); err != nil {
					return err
				}
			}
			row++
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("decontam: %s: parquet row %d: %w", path, row, err)
	}
	return nil
}

// appendArrowText appends the text of row i of a string, integer or list
// column.
func appendArrowText(dst []string, col arrow.Array, i int) []string {
	if col.IsNull(i) {
		return dst
	}
	switch c := col.(type) {
	case *array.String:
		if s := c.Value(i); s != "" {
			dst = append(dst, s)
		}
	case *array.LargeString:
		if s := c.Value(i); s != "" {
			dst = append(dst, s)
		}
	case *array.Int64:
		dst = append(dst, strconv.FormatInt(c.Value(i), 10))
	case *array.Int32:
		dst = append(dst, strconv.FormatInt(int64(c.Value(i)), 10))
	case *array.List:
		lo, hi := c.ValueOffsets(i)
		for j := lo; j < hi; j++ {
			dst = appendArrowText(dst, c.ListValues(), int(j))
		}
	case *array.LargeList:
		lo, hi := c.ValueOffsets(i)
		for j := lo; j < hi; j++ {
			dst = appendArrowText(dst, c.ListValues(), int(j))
		}
	}
	return dst
}
