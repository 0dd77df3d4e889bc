package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// warcLineMax is the longest WARC header line kept; longer lines are garbage.
const warcLineMax = 64 << 10

// warcHeaderMax caps a whole WARC header, so that memory stays bounded.
const warcHeaderMax = 1 << 20

// warcReader reads WARC 1.0/1.1/0.18 and WET files: plain, whole-file gzip
// or one gzip member per record.
type warcReader struct {
	path  string
	f     io.ReadCloser
	src   *source
	br    *bufio.Reader
	max   int64
	queue []warcItem
	done  bool
	// records counts record headers parsed; bytes counts non-blank input seen.
	records int
	// inError is set after a reported error, so that the garbage skipped while
	// resynchronising is not reported a second time.
	inError bool
}

type warcItem struct {
	rec *Record
	err error
}

func openWARC(path string, opt ReaderOptions) (*warcReader, error) {
	f, err := openInput(path)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	src, err := newSource(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &warcReader{
		path: path, f: f, src: src,
		br:  bufio.NewReaderSize(src, warcLineMax),
		max: opt.maxRecord(),
	}, nil
}

func (r *warcReader) Close() error {
	r.src.close()
	return r.f.Close()
}

// consumed is the decompressed offset of the next byte the parser reads.
func (r *warcReader) consumed() int64 { return r.src.data - int64(r.br.Buffered()) }

func (r *warcReader) Next() (*Record, error) {
	for len(r.queue) == 0 {
		if r.done {
			return nil, io.EOF
		}
		r.step()
	}
	res := r.queue[0]
	r.queue = r.queue[1:]
	return res.rec, res.err
}

func (r *warcReader) fail(kind string, off int64, err error) {
	r.queue = append(r.queue, warcItem{err: &RecordError{File: r.path, Offset: off, Kind: kind, Err: err}})
	r.inError = true
}

// readErr handles a read error at decompressed offset recStart (-1 when
// between records): it queues a RecordError and resynchronises.
func (r *warcReader) readErr(err error, recStart int64, what string) {
	var se *streamError
	switch {
	case errors.As(err, &se):
		kind := se.kind
		off := se.offset
		if recStart >= 0 && kind == ErrGzipTruncated {
			kind = ErrWARCTruncated
			off = r.src.offsetOf(recStart)
		}
		r.fail(kind, off, fmt.Errorf("%s: %w", what, se.err))
		if r.src.resync() != nil {
			r.done = true
			return
		}
		r.br.Reset(r.src)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		if recStart >= 0 {
			r.fail(ErrWARCTruncated, r.src.offsetOf(recStart), fmt.Errorf("%s: unexpected end of file", what))
		}
		r.done = true
	default:
		r.fail(ErrWARCTruncated, r.src.offsetOf(max(recStart, 0)), fmt.Errorf("%s: %w", what, err))
		r.done = true
	}
}

// readLine returns one line without its line ending. A line longer than
// warcLineMax is discarded and reported with long=true.
func (r *warcReader) readLine() (line []byte, long bool, err error) {
	line, err = r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		for err == bufio.ErrBufferFull {
			_, err = r.br.ReadSlice('\n')
		}
		return nil, true, err
	}
	if err != nil && len(line) > 0 && err == io.EOF {
		err = nil
	}
	return bytes.TrimRight(line, "\r\n"), false, err
}

// step parses one record (or reports one error) into the queue.
func (r *warcReader) step() {
	// Find the version line, skipping blank lines; anything else is garbage.
	var start int64 = -1
	var garbageAt int64 = -1
	var version []byte
	for {
		at := r.consumed()
		line, long, err := r.readLine()
		if err != nil {
			if r.records == 0 && at == 0 && !r.inError && garbageAt < 0 {
				if errors.Is(err, io.EOF) {
					r.fail(ErrEmptyFile, 0, errors.New("no WARC records"))
					r.done = true
					return
				}
			}
			if garbageAt >= 0 && !r.inError {
				r.fail(ErrWARCGarbage, r.src.offsetOf(garbageAt), errors.New("data that is not a WARC record"))
			}
			r.readErr(err, -1, "reading WARC header")
			return
		}
		if !long && len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if !long && bytes.HasPrefix(line, []byte("WARC/")) {
			start, version = at, append([]byte(nil), line...)
			break
		}
		if garbageAt < 0 {
			garbageAt = at
		}
	}
	if garbageAt >= 0 && !r.inError {
		r.fail(ErrWARCGarbage, r.src.offsetOf(garbageAt), fmt.Errorf("%d bytes that are not a WARC record", start-garbageAt))
	}
	r.inError = false
	off := r.src.offsetOf(start)
	r.records++

	h := map[string]string{}
	parseOldHeaderLine(version, h)
	var last string
	headerBytes := 0
	for {
		line, long, err := r.readLine()
		headerBytes += len(line)
		if headerBytes > warcHeaderMax {
			r.fail(ErrWARCBadHeader, off, fmt.Errorf("WARC header longer than %d bytes", warcHeaderMax))
			return
		}
		if err != nil {
			r.readErr(err, start, "reading WARC header")
			return
		}
		if long {
			r.fail(ErrWARCBadHeader, off, errors.New("WARC header line longer than 64 KiB"))
			return
		}
		if len(line) == 0 {
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && last != "" {
			h[last] += " " + string(bytes.TrimSpace(line))
			continue
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue // tolerate junk lines in headers
		}
		last = strings.ToLower(string(bytes.TrimSpace(k)))
		h[last] = string(bytes.TrimSpace(v))
	}
	n, err := strconv.ParseInt(strings.TrimSpace(h["content-length"]), 10, 64)
	if err != nil || n < 0 {
		r.fail(ErrWARCBadHeader, off, fmt.Errorf("bad or missing Content-Length %q", h["content-length"]))
		return
	}

	typ := strings.ToLower(h["warc-type"])
	rec := &Record{
		File: r.path, Offset: off, DataOffset: start,
		Key:         strings.Trim(h["warc-record-id"], "<>"),
		URL:         strings.Trim(h["warc-target-uri"], "<> "),
		Date:        h["warc-date"],
		ContentType: h["content-type"],
		Type:        typ,
		MaxBytes:    r.max,
	}
	if rec.Key == "" {
		rec.Key = "offset " + strconv.FormatInt(off, 10)
		if off != start {
			rec.Key += "+" + strconv.FormatInt(start, 10)
		}
	}
	rec.Meta = warcMeta(h, string(version))
	switch typ {
	case "warcinfo":
		rec.Skip = SkipWARCInfo
	case "request":
		rec.Skip = SkipWARCRequest
	case "metadata":
		rec.Skip = SkipWARCMetadata
	case "revisit":
		rec.Skip = SkipWARCRevisit
	case "conversion":
		rec.Kind = PayloadText
	case "response":
		ct := strings.ToLower(rec.ContentType)
		switch {
		case strings.Contains(ct, "application/http") || ct == "":
			rec.Kind = PayloadHTTP
		case isHTMLType(ct):
			rec.Kind = PayloadHTML
		default:
			rec.Skip = SkipNonHTML
		}
	case "resource":
		if isHTMLType(strings.ToLower(rec.ContentType)) {
			rec.Kind = PayloadHTML
		} else {
			rec.Skip = SkipWARCResource
		}
	default:
		rec.Skip = SkipWARCOther
	}

	if rec.Skip != "" || n > r.max {
		m, err := io.CopyN(io.Discard, r.br, n)
		if err != nil || m < n {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			r.readErr(err, start, fmt.Sprintf("reading %d-byte WARC block (got %d)", n, m))
			return
		}
		if rec.Skip == "" {
			r.fail(ErrRecordTooLarge, off, fmt.Errorf("WARC block of %d bytes exceeds the %d-byte limit", n, r.max))
			return
		}
	} else {
		rec.Body = make([]byte, n)
		if m, err := io.ReadFull(r.br, rec.Body); err != nil {
			r.readErr(err, start, fmt.Sprintf("reading %d-byte WARC block (got %d)", n, m))
			return
		}
	}
	if r.records == 1 && typ != "warcinfo" {
		r.queue = append(r.queue, warcItem{err: &RecordError{File: r.path, Offset: off, Kind: ErrWARCNoWARCInfo,
			Err: fmt.Errorf("first record is %q, not warcinfo (a fragment?)", typ)}})
	}
	r.queue = append(r.queue, warcItem{rec: rec})
}

// parseOldHeaderLine reads the WARC/0.17-0.18 draft header line
// "WARC/0.18 length type uri date id content-type" into h, when present.
func parseOldHeaderLine(line []byte, h map[string]string) {
	f := strings.Fields(string(line))
	if len(f) < 7 {
		return
	}
	h["content-length"] = f[1]
	h["warc-type"] = f[2]
	h["warc-target-uri"] = f[3]
	h["warc-date"] = f[4]
	h["warc-record-id"] = f[5]
	h["content-type"] = f[6]
}

// warcMeta keeps the WARC headers worth keeping in Document.Meta.
func warcMeta(h map[string]string, version string) map[string]any {
	m := map[string]any{"warc_version": strings.TrimPrefix(strings.Fields(version)[0], "WARC/")}
	for k, name := range map[string]string{
		"warc-record-id":                   "warc_record_id",
		"warc-type":                        "warc_type",
		"content-type":                     "warc_content_type",
		"warc-trec-id":                     "warc_trec_id",
		"warc-ip-address":                  "warc_ip_address",
		"warc-identified-payload-type":     "warc_identified_payload_type",
		"warc-identified-content-language": "warc_identified_content_language",
		"warc-refers-to":                   "warc_refers_to",
		"warc-payload-digest":              "warc_payload_digest",
	} {
		if v := h[k]; v != "" {
			m[name] = v
		}
	}
	return m
}

func isHTMLType(ct string) bool {
	return strings.Contains(ct, "text/html") || strings.Contains(ct, "application/xhtml")
}
