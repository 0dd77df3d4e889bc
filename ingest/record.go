package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"time"
)

// Format names an input file format.
type Format string

// The input formats Open understands.
const (
	FormatAuto    Format = "auto"
	FormatWARC    Format = "warc"
	FormatWET     Format = "wet"
	FormatJSONL   Format = "jsonl"
	FormatParquet Format = "parquet"
	FormatHTML    Format = "html"
	FormatText    Format = "text"
)

// Formats lists every concrete format (FormatAuto excluded).
var Formats = []Format{FormatWARC, FormatWET, FormatJSONL, FormatParquet, FormatHTML, FormatText}

// ParseFormat checks a user-supplied format name.
func ParseFormat(s string) (Format, error) {
	if s == "" {
		return FormatAuto, nil
	}
	f := Format(strings.ToLower(s))
	if f == FormatAuto {
		return f, nil
	}
	for _, g := range Formats {
		if f == g {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown format %q (want auto, warc, wet, jsonl, parquet, html or text)", s)
}

// DefaultMaxRecordBytes is the default cap on one record's payload.
const DefaultMaxRecordBytes = 64 << 20

// ReaderOptions configures Open. The zero value reads Dolma-style JSONL
// ({id, text, source, metadata}) and caps records at DefaultMaxRecordBytes.
type ReaderOptions struct {
	// TextField and IDField name the JSONL/Parquet fields (columns) that hold
	// the document text and identity; "" means "text" and "id".
	TextField, IDField string
	// MaxRecordBytes caps one record (WARC block, JSONL line, decoded HTTP
	// body); a larger record is skipped without being buffered and reported
	// as a RecordError of kind ErrRecordTooLarge. 0 means DefaultMaxRecordBytes.
	MaxRecordBytes int64
	// MaxHTMLBytes caps the HTML page (UTF-8, after HTTP decoding) handed
	// to extraction: a larger page is dropped as SkipHTMLTooLarge, because
	// go-trafilatura's time grows with the square of a page's size. 0 means
	// DefaultMaxHTMLBytes.
	MaxHTMLBytes int64 `json:",omitempty"`
	// ExtractTimeout is the time budget of one page's extraction: a page
	// not done by then is dropped as SkipExtractTimeout. 0 means
	// DefaultExtractTimeout; negative, none. It is a backstop that, under
	// MaxHTMLBytes, a page only reaches on a machine far slower than
	// expected (it is not part of the output's identity).
	ExtractTimeout time.Duration `json:"-"`
}

// DefaultMaxHTMLBytes is the default cap on a page handed to extraction.
// Common Crawl itself truncates payloads at 1 MiB.
const DefaultMaxHTMLBytes = 2 << 20

// DefaultExtractTimeout is the default time budget of one extraction.
const DefaultExtractTimeout = 60 * time.Second

func (o ReaderOptions) textField() string {
	if o.TextField == "" {
		return "text"
	}
	return o.TextField
}

func (o ReaderOptions) idField() string {
	if o.IDField == "" {
		return "id"
	}
	return o.IDField
}

func (o ReaderOptions) maxRecord() int64 {
	if o.MaxRecordBytes <= 0 {
		return DefaultMaxRecordBytes
	}
	return o.MaxRecordBytes
}

// PayloadKind says how Convert must interpret Record.Body.
type PayloadKind string

// Payload kinds.
const (
	// PayloadHTTP is a full HTTP response message (a WARC response record).
	PayloadHTTP PayloadKind = "http"
	// PayloadHTML is an HTML page in an unknown charset.
	PayloadHTML PayloadKind = "html"
	// PayloadText is ready text (WET conversion, JSONL, Parquet, text files):
	// it must be UTF-8 unless Detect is set.
	PayloadText PayloadKind = "text"
)

// Record is one input record, before conversion to a Document.
type Record struct {
	// LangID, if set, is the language detector Convert uses (else
	// whatlanggo).
	LangID LangDetector
	// File is the input path as given to Open.
	File string
	// Offset is where the record starts in File as stored on disk: for
	// gzip inputs, the compressed offset of the gzip member in which the
	// record's header starts (exact for per-record gzip such as Common
	// Crawl's; 0 for a whole-file gzip); for uncompressed inputs, the exact
	// byte offset; for zstd inputs, 0 (a zstd frame cannot be entered in the
	// middle). For Parquet it is the row number. Errors (RecordError.Offset)
	// use the same convention.
	Offset int64
	// DataOffset is the record's offset in the decompressed stream (equal to
	// Offset for uncompressed files). After a gzip resync it continues to
	// count decompressed bytes and is no longer a file position.
	DataOffset int64
	// Line is the 1-based line number for JSONL records, else 0. After a
	// corrupt gzip member it counts the lines read, not the file's lines.
	Line int
	// Key is the record's identity within its input: the WARC-Record-ID,
	// the JSON id, the file's base name, or "line N" / "row N" / "offset N".
	Key string
	// KeyFromPosition is set when Key was made from the record's position
	// ("line N", "row N", "offset N"): Run then prefixes the input's name,
	// so that ids are unique over all the files of a source.
	KeyFromPosition bool
	// URL, Date and ContentType are as given by the input (Date raw).
	URL, Date, ContentType string
	// Type is the WARC-Type for WARC/WET records ("" otherwise).
	Type string
	// Skip, when non-empty, is the typed reason why this record yields no
	// document (one of SkipReasons); Body is then nil.
	Skip string
	// Kind says how Convert interprets Body.
	Kind PayloadKind
	// Body is the payload: the HTTP message, the HTML page or the text.
	Body []byte
	// Meta holds input metadata to keep in Document.Meta (WARC headers worth
	// keeping, the original JSON fields other than id and text...).
	Meta map[string]any
	// MaxBytes caps decoded bodies in Convert (from ReaderOptions).
	MaxBytes int64
	// MaxHTML and ExtractTimeout are ReaderOptions' MaxHTMLBytes and
	// ExtractTimeout for Convert (0: the defaults).
	MaxHTML        int64
	ExtractTimeout time.Duration
}

// Skip reasons: typed constants so that stats can list zeros. A record with
// one of these yields no document and is not an error.
const (
	SkipWARCInfo      = "warc/warcinfo"
	SkipWARCRequest   = "warc/request"
	SkipWARCMetadata  = "warc/metadata"
	SkipWARCRevisit   = "warc/revisit"
	SkipWARCResource  = "warc/resource-non-html"
	SkipWARCOther     = "warc/other-type"
	SkipNonHTML       = "warc/non-html"
	SkipHTTPStatus    = "http/not-ok"
	SkipHTTPEncoding  = "http/unsupported-encoding"
	SkipExtractEmpty  = "extract/empty"
	SkipExtractFailed = "extract/failed"
	// SkipHTMLTooLarge: the page is over ReaderOptions.MaxHTMLBytes.
	SkipHTMLTooLarge = "html/too_large"
	// SkipExtractTimeout: extraction ran past ReaderOptions.ExtractTimeout.
	SkipExtractTimeout = "extract/timeout"
	SkipEmptyText      = "text/empty"
	SkipJSONNoText     = "json/no-text"
)

// SkipReasons lists every skip reason Open and Convert can return.
var SkipReasons = []string{
	SkipWARCInfo, SkipWARCRequest, SkipWARCMetadata, SkipWARCRevisit, SkipWARCResource,
	SkipWARCOther, SkipNonHTML, SkipHTTPStatus, SkipHTTPEncoding, SkipExtractEmpty,
	SkipExtractFailed, SkipEmptyText, SkipJSONNoText, SkipHTMLTooLarge, SkipExtractTimeout,
}

// Error kinds of RecordError.
const (
	ErrGzipCorrupt    = "gzip/corrupt"
	ErrGzipTruncated  = "gzip/truncated"
	ErrZstdCorrupt    = "zstd/corrupt"
	ErrWARCTruncated  = "warc/truncated"
	ErrWARCBadHeader  = "warc/bad-header"
	ErrWARCNoWARCInfo = "warc/no-warcinfo"
	ErrWARCGarbage    = "warc/garbage"
	ErrWARCBadLength  = "warc/bad-length"
	ErrJSONInvalid    = "json/invalid"
	ErrUTF8Invalid    = "utf8/invalid"
	ErrRecordTooLarge = "record/too-large"
	ErrEmptyFile      = "file/empty"
	ErrHTTPInvalid    = "http/invalid"
	ErrHTTPBody       = "http/bad-body"
	ErrCharset        = "charset/undecodable"
	ErrParquetRead    = "parquet/read"
)

// ErrorKinds lists every RecordError kind.
var ErrorKinds = []string{
	ErrGzipCorrupt, ErrGzipTruncated, ErrZstdCorrupt, ErrWARCTruncated, ErrWARCBadHeader,
	ErrWARCNoWARCInfo, ErrWARCGarbage, ErrWARCBadLength, ErrJSONInvalid, ErrUTF8Invalid, ErrRecordTooLarge,
	ErrEmptyFile, ErrHTTPInvalid, ErrHTTPBody, ErrCharset, ErrParquetRead,
}

// ConfigError is an input that does not fit the options (a Parquet file
// without the text column, or whose text column is not a string column):
// not bad data to count and step over but a wrong setting, so Run fails.
type ConfigError struct {
	File string
	Err  error
}

func (e *ConfigError) Error() string { return fmt.Sprintf("%s: %v", e.File, e.Err) }

// Unwrap returns the cause.
func (e *ConfigError) Unwrap() error { return e.Err }

// IsIncident reports whether an error kind marks something found between
// records (data that is not a record, a WARC file that does not start with
// warcinfo) rather than a broken record: incidents are counted as errors but
// are not records of the input.
func IsIncident(kind string) bool { return kind == ErrWARCGarbage || kind == ErrWARCNoWARCInfo }

// RecordError is a recoverable, counted error: after it, Next continues
// with the next complete record. It names the file and the offset (as in
// Record.Offset) or the line.
type RecordError struct {
	File   string
	Offset int64
	Line   int
	// Kind is one of ErrorKinds.
	Kind string
	Err  error
}

func (e *RecordError) Error() string {
	loc := fmt.Sprintf("offset %d", e.Offset)
	if e.Line > 0 {
		loc = fmt.Sprintf("line %d", e.Line)
	}
	if e.Err == nil {
		return fmt.Sprintf("%s: %s: %s", e.File, loc, e.Kind)
	}
	return fmt.Sprintf("%s: %s: %s: %v", e.File, loc, e.Kind, e.Err)
}

// Unwrap returns the cause.
func (e *RecordError) Unwrap() error { return e.Err }

// IsRecordError reports whether err is (or wraps) a *RecordError, and returns it.
func IsRecordError(err error) (*RecordError, bool) {
	var re *RecordError
	ok := errors.As(err, &re)
	return re, ok
}

// framer is implemented by the readers: framing returns the number of
// record units (records, and failures that stand for records) the reader's
// framing layer counted in its input as it read it, independently of the
// records and errors Next returned, or an error when its framing layers
// disagree. Run checks it against what it accounted for.
type framer interface {
	framing() (int64, error)
}

// RecordReader is a stream of records from one input file. Next returns
// io.EOF after the last record, a *RecordError for a recoverable problem
// (call Next again), or another error for a fatal one (stop).
type RecordReader interface {
	Next() (*Record, error)
	Close() error
}

// compression names a file's compression, detected from its magic bytes.
type compression int

const (
	compNone compression = iota
	compGzip
	compZstd
)

func sniffCompression(head []byte) compression {
	switch {
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		return compGzip
	case len(head) >= 4 && bytes.Equal(head[:4], []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return compZstd
	}
	return compNone
}

// DetectFormat picks a format from the name of a file and, when the name
// does not say, from its first bytes (after decompression).
func DetectFormat(path string) (Format, error) { return detectFormat(context.Background(), path) }

func detectFormat(ctx context.Context, path string) (Format, error) {
	if f, ok := formatFromName(path); ok {
		return f, nil
	}
	head, err := peekDecompressed(ctx, path, 4096)
	if err != nil {
		return "", err
	}
	name := baseName(path)
	for _, ext := range []string{".gz", ".zst", ".zstd"} {
		name = strings.TrimSuffix(name, ext)
	}
	f := sniffFormat(head)
	if f == FormatWARC || f == FormatWET {
		// A WET sample saved as .txt (cc_net's sample.warc.txt) is still WARC.
		return f, nil
	}
	switch {
	case strings.HasSuffix(name, ".txt"), strings.HasSuffix(name, ".text"), strings.HasSuffix(name, ".md"):
		return FormatText, nil
	case strings.HasSuffix(name, ".html"), strings.HasSuffix(name, ".htm"), strings.HasSuffix(name, ".xhtml"):
		return FormatHTML, nil
	}
	return f, nil
}

// formatFromName picks a format from a file name alone, when the name is
// enough (HTML and text names are not: they may hold WARC).
func formatFromName(path string) (Format, bool) {
	name := baseName(path)
	for _, ext := range []string{".gz", ".zst", ".zstd"} {
		name = strings.TrimSuffix(name, ext)
	}
	switch {
	case strings.HasSuffix(name, ".wet"), strings.HasSuffix(name, ".warc.wet"):
		return FormatWET, true
	case strings.HasSuffix(name, ".warc"), strings.HasSuffix(name, ".arc.warc"):
		return FormatWARC, true
	case strings.HasSuffix(name, ".jsonl"), strings.HasSuffix(name, ".json"), strings.HasSuffix(name, ".ndjson"):
		return FormatJSONL, true
	case strings.HasSuffix(name, ".parquet"):
		return FormatParquet, true
	}
	return "", false
}

func sniffFormat(head []byte) Format {
	t := bytes.TrimLeft(head, " \t\r\n\ufeff")
	switch {
	case bytes.HasPrefix(head, []byte("PAR1")):
		return FormatParquet
	case bytes.HasPrefix(t, []byte("WARC/")):
		if bytes.Contains(head, []byte("WARC-Type: conversion")) {
			return FormatWET
		}
		return FormatWARC
	case bytes.HasPrefix(t, []byte("{")):
		return FormatJSONL
	}
	l := bytes.ToLower(t)
	if bytes.HasPrefix(l, []byte("<!doctype html")) || bytes.HasPrefix(l, []byte("<html")) || bytes.Contains(l, []byte("<body")) {
		return FormatHTML
	}
	return FormatText
}

// peekDecompressed returns up to n bytes of the decompressed start of path.
func peekDecompressed(ctx context.Context, path string, n int) ([]byte, error) {
	in, err := openInput(ctx, path)
	if err != nil {
		return nil, err
	}
	defer in.close()
	s, err := openSource(in, redactInput(path), false)
	if err != nil {
		return nil, err
	}
	defer s.close()
	buf := make([]byte, n)
	m, err := io.ReadFull(s, buf)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		if m == 0 {
			return nil, fmt.Errorf("ingest: %s: %w", redactInput(path), err)
		}
	}
	return buf[:m], nil
}

// Open returns a reader over one input file. It streams: it never reads a
// whole file into memory. Format FormatAuto (or "") calls DetectFormat.
// path may be "-" (standard input) or a pipe: see IsStream.
func Open(path string, f Format, opt ReaderOptions) (RecordReader, error) {
	r, _, err := OpenFormat(path, f, opt)
	return r, err
}

// OpenFormat is Open that also returns the format it read the input as.
func OpenFormat(path string, f Format, opt ReaderOptions) (RecordReader, Format, error) {
	return openFormat(context.Background(), path, f, opt)
}

// openFormat is OpenFormat whose remote reads end when ctx does.
func openFormat(ctx context.Context, path string, f Format, opt ReaderOptions) (RecordReader, Format, error) {
	stream := IsStream(path)
	// name is what the readers put in records and errors: a URL without
	// its credentials (store.Redact).
	name := redactInput(path)
	if !stream && (f == "" || f == FormatAuto) {
		var err error
		if f, err = detectFormat(ctx, path); err != nil {
			return nil, "", err
		}
	}
	if f == FormatParquet && stream {
		return nil, "", fmt.Errorf("ingest: %s: Parquet needs a regular file (its footer is read first), not a stream", name)
	}
	var in *input
	if f != FormatParquet {
		var err error
		if in, err = openInput(ctx, path); err != nil {
			return nil, "", err
		}
		if f == "" || f == FormatAuto {
			f = sniffStream(path, in)
		}
	}
	var r RecordReader
	var err error
	switch f {
	case FormatWARC, FormatWET:
		r, err = openWARC(name, in, opt)
	case FormatJSONL:
		r, err = openJSONL(name, in, opt)
	case FormatParquet:
		r, err = openParquet(ctx, path, name, opt)
	case FormatHTML, FormatText:
		r, err = openSingle(name, in, f, opt)
	default:
		if in != nil {
			in.close()
		}
		return nil, "", fmt.Errorf("ingest: %s: unknown format %q", name, f)
	}
	if err != nil {
		return nil, "", err
	}
	return r, f, nil
}

// Records ranges over a reader's records: each step yields a record or an
// error (a *RecordError to count and go on from, or a fatal error, after
// which the sequence ends). It stops at io.EOF; it does not close r.
func Records(r RecordReader) iter.Seq2[*Record, error] {
	return func(yield func(*Record, error) bool) {
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if !yield(rec, err) {
				return
			}
			if _, ok := IsRecordError(err); err != nil && !ok {
				return
			}
		}
	}
}
