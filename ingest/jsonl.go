package ingest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// jsonlReader reads JSON Lines, plain, gzip or zstd compressed.
type jsonlReader struct {
	path      string
	in        *input
	src       *source
	br        *bufio.Reader
	opt       ReaderOptions
	max       int64
	line      int
	buf       []byte
	done      bool
	sawAny    bool
	textField string
	idField   string
	// units counts the lines framed (non-blank, or unreadable) and the
	// empty-file report.
	units int64
}

func (r *jsonlReader) framing() (int64, error) { return r.units + r.src.failures, nil }

func openJSONL(path string, in *input, opt ReaderOptions) (*jsonlReader, error) {
	src, err := newSource(in, path)
	if err != nil {
		in.close()
		return nil, err
	}
	return &jsonlReader{path: path, in: in, src: src, br: bufio.NewReaderSize(src, 1<<20), opt: opt,
		max: opt.maxRecord(), textField: opt.textField(), idField: opt.idField()}, nil
}

func (r *jsonlReader) Close() error {
	r.src.close()
	return r.in.close()
}

func (r *jsonlReader) errAt(kind string, off int64, err error) *RecordError {
	return &RecordError{File: r.path, Offset: r.src.offsetOf(off), Line: r.line, Kind: kind, Err: err}
}

// readLine reads the next line into r.buf; a line over max bytes is
// consumed without being kept and reported as too large.
func (r *jsonlReader) readLine() (start int64, tooLong bool, err error) {
	start = r.src.data - int64(r.br.Buffered())
	r.buf = r.buf[:0]
	n := 0
	for {
		chunk, err := r.br.ReadSlice('\n')
		n += len(chunk)
		if !tooLong {
			if int64(len(r.buf)+len(chunk)) > r.max {
				tooLong = true
				r.buf = r.buf[:0]
			} else {
				r.buf = append(r.buf, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && n > 0 {
			err = nil
		}
		return start, tooLong, err
	}
}

func (r *jsonlReader) Next() (*Record, error) {
	for {
		if r.done {
			return nil, io.EOF
		}
		start, tooLong, err := r.readLine()
		if err != nil {
			r.done = true
			if errors.Is(err, io.EOF) {
				if !r.sawAny {
					r.units++
					return nil, &RecordError{File: r.path, Kind: ErrEmptyFile, Err: errors.New("no JSON lines")}
				}
				return nil, io.EOF
			}
			var se *streamError
			if errors.As(err, &se) {
				r.line++
				re := r.errAt(se.kind, start, err)
				re.Offset = se.offset
				if r.src.resync() == nil {
					r.done = false
					r.br.Reset(r.src)
				}
				return nil, re
			}
			r.units++
			return nil, r.errAt(ErrJSONInvalid, start, err)
		}
		r.line++
		r.sawAny = true
		if tooLong {
			r.units++
			return nil, r.errAt(ErrRecordTooLarge, start, fmt.Errorf("line longer than %d bytes", r.max))
		}
		line := r.buf
		if r.line == 1 {
			// A byte-order mark (editors on Windows write one) is not part
			// of the first line.
			line = bytes.TrimPrefix(line, []byte("\ufeff"))
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		r.units++
		return r.parse(line, start)
	}
}

func (r *jsonlReader) parse(line []byte, start int64) (*Record, error) {
	if !utf8.Valid(line) {
		return nil, r.errAt(ErrUTF8Invalid, start, errors.New("line is not valid UTF-8"))
	}
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	var obj map[string]any
	if err := d.Decode(&obj); err != nil {
		return nil, r.errAt(ErrJSONInvalid, start, err)
	}
	if d.More() {
		return nil, r.errAt(ErrJSONInvalid, start, errors.New("data after the JSON object"))
	}
	rec := &Record{File: r.path, Offset: r.src.offsetOf(start), DataOffset: start, Line: r.line, Kind: PayloadText, MaxBytes: r.max}
	switch id := obj[r.idField].(type) {
	case string:
		rec.Key = id
	case json.Number:
		rec.Key = id.String()
	}
	if rec.Key == "" {
		rec.KeyFromPosition = true
		rec.Key = "line " + strconv.Itoa(r.line)
	}
	text, ok := obj[r.textField].(string)
	delete(obj, r.textField)
	delete(obj, r.idField)
	rec.Meta = map[string]any{"json": obj}
	rec.URL, rec.Date = jsonURLDate(obj)
	if !ok {
		rec.Skip = SkipJSONNoText
		return rec, nil
	}
	rec.Body = []byte(text)
	return rec, nil
}

// jsonURLDate finds a URL and a date among the usual field names, at the
// top level or in a "metadata" object (Dolma).
func jsonURLDate(obj map[string]any) (url, date string) {
	look := func(m map[string]any) {
		for _, k := range []string{"url", "URL", "warc_url", "source_url"} {
			if s, ok := m[k].(string); ok && url == "" {
				url = s
			}
		}
		for _, k := range []string{"date", "created", "added", "timestamp", "warc_date", "crawl_date"} {
			if s, ok := m[k].(string); ok && date == "" {
				date = s
			}
		}
	}
	look(obj)
	if md, ok := obj["metadata"].(map[string]any); ok {
		look(md)
	}
	return url, date
}
