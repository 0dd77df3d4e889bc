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
	in    *input
	src   *source
	pr    *pushReader
	br    *bufio.Reader
	max   int64
	queue []warcItem
	done  bool
	// records counts record headers parsed.
	records int
	// inError is set after a reported error, so that the garbage skipped while
	// resynchronising is not reported a second time.
	inError bool
	// pending is the error of a record whose block ran to the end of the
	// input: a Content-Length that is too large when another record header
	// follows its header, else a truncated record.
	pending *RecordError
	// Framing: headers read where a gzip member starts (lastAtMember is the
	// last one counted), source failures that a record in progress took
	// as its own error, and errors that are units of their own.
	atMember, lastAtMember, absorbed, extraUnits int64
}

// pushReader serves bytes pushed back in front of the source.
type pushReader struct {
	b   []byte
	src io.Reader
}

func (p *pushReader) Read(b []byte) (int, error) {
	if len(p.b) > 0 {
		n := copy(b, p.b)
		p.b = p.b[n:]
		return n, nil
	}
	return p.src.Read(b)
}

type warcItem struct {
	rec *Record
	err error
}

func openWARC(path string, in *input, opt ReaderOptions) (*warcReader, error) {
	src, err := newSource(in, path)
	if err != nil {
		in.close()
		return nil, err
	}
	pr := &pushReader{src: src}
	return &warcReader{
		path: path, in: in, src: src, pr: pr,
		br:  bufio.NewReaderSize(pr, warcLineMax),
		max: opt.maxRecord(), lastAtMember: -1,
	}, nil
}

// warcMemberInside returns where, inside the n-byte line at decompressed
// offset at, a gzip member that starts with a WARC header begins (0: none).
func (r *warcReader) warcMemberInside(at int64, n int) int {
	for _, m := range r.src.members {
		if p := m.data + m.lead; m.warc && !m.truncated && p > at && p < at+int64(n) {
			return int(p - at)
		}
	}
	return 0
}

// resetBuf drops what is buffered (after the source moved).
func (r *warcReader) resetBuf() {
	r.pr.b = nil
	r.br.Reset(r.pr)
}

// pushback puts b, the bytes just before the current position, back in
// front of the stream.
func (r *warcReader) pushback(b []byte) {
	rest, _ := r.br.Peek(r.br.Buffered())
	nb := make([]byte, 0, len(b)+len(rest)+len(r.pr.b))
	r.pr.b = append(append(append(nb, b...), rest...), r.pr.b...)
	r.br.Reset(r.pr)
}

// framing returns the number of record units the framing saw in this input
// (record headers, failed gzip members, unreadable stretches), counted as
// the input was read rather than from the records and errors returned, and
// an error when the gzip members that start with a WARC header are not the
// records read at a member's start (a record swallowed by another).
func (r *warcReader) framing() (int64, error) {
	if r.src.comp == compGzip && r.src.warcMembers != r.atMember {
		return 0, fmt.Errorf("%s: %d gzip members start with a WARC header but %d records were read at a member's start",
			r.path, r.src.warcMembers, r.atMember)
	}
	return int64(r.records) + r.src.failures - r.absorbed + r.extraUnits, nil
}

func (r *warcReader) Close() error {
	r.src.close()
	return r.in.close()
}

// consumed is the decompressed offset of the next byte the parser reads.
func (r *warcReader) consumed() int64 {
	return r.src.data - int64(len(r.pr.b)) - int64(r.br.Buffered())
}

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

// flushPending queues the error of a record whose block ran to the end of
// the input: as a wrong Content-Length when found is set (another record
// header followed its header), else as a truncated record.
func (r *warcReader) flushPending(found bool) {
	if r.pending == nil {
		return
	}
	if found {
		r.pending.Kind = ErrWARCBadLength
		r.pending.Err = fmt.Errorf("%w, and another WARC record starts inside it", r.pending.Err)
	}
	r.queue = append(r.queue, warcItem{err: r.pending})
	r.pending = nil
}

// readErr handles a read error at decompressed offset recStart (-1 when
// between records): it queues a RecordError and resynchronises.
func (r *warcReader) readErr(err error, recStart int64, what string) {
	var se *streamError
	switch {
	case errors.As(err, &se):
		kind := se.kind
		off := se.offset
		if recStart >= 0 {
			// The record in progress takes the failure as its error.
			r.absorbed++
			if kind == ErrGzipTruncated {
				kind = ErrWARCTruncated
				off = r.src.offsetOf(recStart)
			}
		}
		r.fail(kind, off, fmt.Errorf("%s: %w", what, se.err))
		if r.src.resync() != nil {
			r.done = true
			return
		}
		r.resetBuf()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		if recStart >= 0 {
			r.fail(ErrWARCTruncated, r.src.offsetOf(recStart), fmt.Errorf("%s: unexpected end of file", what))
		}
		r.done = true
	default:
		if recStart < 0 {
			r.extraUnits++
		}
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
					r.extraUnits++
					r.fail(ErrEmptyFile, 0, errors.New("no WARC records"))
					r.done = true
					return
				}
			}
			r.flushPending(false)
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
		if !long {
			if k := r.warcMemberInside(at, len(line)); k > 0 {
				// A gzip member that starts with a WARC header begins
				// inside this line (the member before it did not end with
				// a line break): the record starts there, not in garbage.
				ending := r.consumed() - at - int64(len(line))
				tail := append([]byte(nil), line[k:]...)
				for ; ending > 1; ending-- {
					tail = append(tail, '\r')
				}
				r.pushback(append(tail, '\n'))
			}
		}
	}
	r.flushPending(true)
	if garbageAt >= 0 && !r.inError {
		r.fail(ErrWARCGarbage, r.src.offsetOf(garbageAt), fmt.Errorf("%d bytes that are not a WARC record", start-garbageAt))
	}
	r.inError = false
	off := r.src.offsetOf(start)
	r.records++
	if m, ok := r.src.memberAt(start); ok && m.warc && !m.truncated && start == m.data+m.lead && start > r.lastAtMember {
		r.atMember++
		r.lastAtMember = start
	}

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
		rec.KeyFromPosition = true
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

	hdrEnd := r.consumed()
	keep := rec.Skip == "" && n <= r.max
	body, got, err := r.readBlock(n, keep)
	switch {
	case errors.Is(err, errIntoRecord):
		r.fail(ErrWARCBadLength, off, fmt.Errorf("Content-Length %d runs past the end of the record's gzip member (%d bytes of block in it) into the next record", n, got))
		return
	case err != nil:
		var se *streamError
		if !errors.As(err, &se) && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) && r.reposition(hdrEnd, body, got) {
			// The input ends inside the block: a record cut off, or a
			// Content-Length too large. The next step tells them apart.
			r.pending = &RecordError{File: r.path, Offset: off, Kind: ErrWARCTruncated,
				Err: fmt.Errorf("Content-Length %d, but the input ends %d bytes into the block", n, got)}
			r.inError = true
			return
		}
		r.readErr(err, start, fmt.Sprintf("reading %d-byte WARC block (got %d)", n, got))
		return
	}
	if !r.trailerOK() {
		r.fail(ErrWARCBadLength, off, fmt.Errorf("Content-Length %d does not end the record: its block is not followed by another WARC record", n))
		r.reposition(hdrEnd, body, got)
		return
	}
	if rec.Skip == "" && n > r.max {
		r.fail(ErrRecordTooLarge, off, fmt.Errorf("WARC block of %d bytes exceeds the %d-byte limit", n, r.max))
		return
	}
	rec.Body = body
	if r.records == 1 && typ != "warcinfo" {
		r.queue = append(r.queue, warcItem{err: &RecordError{File: r.path, Offset: off, Kind: ErrWARCNoWARCInfo,
			Err: fmt.Errorf("first record is %q, not warcinfo (a fragment?)", typ)}})
	}
	r.queue = append(r.queue, warcItem{rec: rec})
}

// errIntoRecord stops a block that runs into a gzip member that starts a
// WARC record: one gzip member per record, so the Content-Length is wrong.
var errIntoRecord = errors.New("block runs into the next record's gzip member")

// readBlock reads the n-byte block after a record header, keeping it when
// keep (else it is skipped without being buffered). It never reads into a
// gzip member that starts with a WARC header: it stops there with
// errIntoRecord.
func (r *warcReader) readBlock(n int64, keep bool) (body []byte, got int64, err error) {
	if keep {
		body = make([]byte, n)
	}
	for got < n {
		chunk := n - got
		if r.src.comp == compGzip {
			if _, err = r.br.Peek(1); err == nil {
				pos := r.consumed()
				if m, ok := r.src.memberAt(pos); ok {
					if pos == m.data && m.warc {
						err = errIntoRecord
					}
					chunk = min(chunk, m.end-pos)
				}
			}
			if err != nil {
				if keep {
					body = body[:got]
				}
				return body, got, err
			}
		}
		var k int64
		if keep {
			var m int
			m, err = io.ReadFull(r.br, body[got:got+chunk])
			k = int64(m)
		} else {
			k, err = io.CopyN(io.Discard, r.br, chunk)
		}
		got += k
		if err != nil {
			if keep {
				body = body[:got]
			}
			return body, got, err
		}
	}
	return body, got, nil
}

// trailerOK reports whether what follows a block is what should: the
// record's closing CRLF CRLF (what follows is then the next step's
// business), or blank lines and another WARC header or the end of the
// input (or a failure that the next step reports).
func (r *warcReader) trailerOK() bool {
	p, err := r.br.Peek(4096)
	if bytes.HasPrefix(p, []byte("\r\n\r\n")) {
		return true
	}
	t := bytes.TrimLeft(p, " \t\r\n")
	switch {
	case len(t) == 0:
		return true
	case len(t) >= 5:
		return bytes.HasPrefix(t, []byte("WARC/"))
	}
	return err != nil
}

// reposition moves back to hdrEnd, the end of a record header whose block
// was wrong, so that the next step looks for the next record from there:
// the got bytes read since are pushed back when kept, else the source
// rewinds. It reports false when neither is possible (a pipe).
func (r *warcReader) reposition(hdrEnd int64, body []byte, got int64) bool {
	if r.consumed() != hdrEnd+got {
		return false
	}
	if got == 0 {
		return true
	}
	if int64(len(body)) == got {
		r.pushback(body)
		return true
	}
	if !r.src.canRewind() || r.src.rewind(hdrEnd) != nil {
		return false
	}
	r.resetBuf()
	return true
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
