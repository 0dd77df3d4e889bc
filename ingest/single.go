package ingest

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
)

// singleReader yields one record for a whole HTML or text file.
type singleReader struct {
	path string
	in   *input
	f    Format
	max  int64
	done bool
}

func openSingle(path string, in *input, f Format, opt ReaderOptions) (*singleReader, error) {
	return &singleReader{path: path, in: in, f: f, max: opt.maxRecord()}, nil
}

func (r *singleReader) Close() error { return r.in.close() }

// framing: one file, one record.
func (r *singleReader) framing() (int64, error) { return 1, nil }

func (r *singleReader) Next() (*Record, error) {
	if r.done {
		return nil, io.EOF
	}
	r.done = true
	src, err := newSource(r.in, r.path)
	if err != nil {
		return nil, err
	}
	defer src.close()
	// Read at most max+1 bytes: a larger file is reported, not buffered.
	body, err := io.ReadAll(io.LimitReader(src, r.max+1))
	if err != nil {
		var se *streamError
		kind := ErrGzipCorrupt
		if errors.As(err, &se) {
			kind = se.kind
		}
		return nil, &RecordError{File: r.path, Kind: kind, Err: err}
	}
	if int64(len(body)) > r.max {
		return nil, &RecordError{File: r.path, Kind: ErrRecordTooLarge, Err: fmt.Errorf("file larger than the %d-byte limit", r.max)}
	}
	if len(body) == 0 {
		return nil, &RecordError{File: r.path, Kind: ErrEmptyFile, Err: errors.New("empty file")}
	}
	rec := &Record{File: r.path, Key: filepath.Base(r.path), Body: body, MaxBytes: r.max, DataOffset: 0}
	if r.f == FormatHTML {
		rec.Kind = PayloadHTML
		rec.ContentType = "text/html"
	} else {
		rec.Kind = PayloadText
		rec.ContentType = "text/plain"
		rec.Meta = map[string]any{"detect_charset": true}
	}
	return rec, nil
}
