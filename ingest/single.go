package ingest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// singleReader yields one record for a whole HTML or text file.
type singleReader struct {
	path string
	f    Format
	max  int64
	done bool
}

func openSingle(path string, f Format, opt ReaderOptions) (*singleReader, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	return &singleReader{path: path, f: f, max: opt.maxRecord()}, nil
}

func (r *singleReader) Close() error { return nil }

// framing: one file, one record.
func (r *singleReader) framing() (int64, error) { return 1, nil }

func (r *singleReader) Next() (*Record, error) {
	if r.done {
		return nil, io.EOF
	}
	r.done = true
	fh, err := os.Open(r.path)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	defer fh.Close()
	src, err := newSource(fh, r.path)
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
