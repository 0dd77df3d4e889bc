package ingest

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// httpResponse is a parsed HTTP response message from a WARC record.
type httpResponse struct {
	status int
	// header holds lower-cased header names; repeated headers are joined by ", ".
	header map[string]string
	body   []byte
}

// parseHTTP parses an HTTP/1.x response message leniently: LF or CRLF line
// endings, junk header lines ignored.
func parseHTTP(b []byte) (*httpResponse, error) {
	line, rest, ok := cutLine(b)
	if !ok && len(rest) == 0 && len(line) == 0 {
		return nil, errors.New("empty HTTP message")
	}
	if !bytes.HasPrefix(line, []byte("HTTP/")) {
		return nil, fmt.Errorf("status line %q does not start with HTTP/", truncate(line, 60))
	}
	f := strings.Fields(string(line))
	if len(f) < 2 {
		return nil, fmt.Errorf("status line %q has no status code", truncate(line, 60))
	}
	status, err := strconv.Atoi(f[1])
	if err != nil || status < 100 || status > 999 {
		return nil, fmt.Errorf("bad status code %q", f[1])
	}
	resp := &httpResponse{status: status, header: map[string]string{}}
	for {
		if len(rest) == 0 {
			// Headers without a body (or without the blank line).
			return resp, nil
		}
		line, rest, _ = cutLine(rest)
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		key := strings.ToLower(string(bytes.TrimSpace(k)))
		val := string(bytes.TrimSpace(v))
		if old, dup := resp.header[key]; dup && old != "" {
			val = old + ", " + val
		}
		resp.header[key] = val
	}
	resp.body = rest
	return resp, nil
}

// cutLine splits off the first line (without CR LF); ok is false when no
// line ending was found.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return bytes.TrimRight(b, "\r"), nil, false
	}
	return bytes.TrimRight(b[:i], "\r"), b[i+1:], true
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

// errUnsupportedEncoding marks a Content-Encoding this package cannot decode.
var errUnsupportedEncoding = errors.New("unsupported content encoding")

// decodeBody undoes chunked transfer-encoding and Content-Encoding. Many
// crawlers store bodies already decoded but keep the headers, so a body that
// does not look encoded is returned as it is.
func decodeBody(h map[string]string, body []byte, max int64) ([]byte, error) {
	if strings.Contains(strings.ToLower(h["transfer-encoding"]), "chunked") && looksChunked(body) {
		d, err := dechunk(body)
		if err != nil {
			return nil, fmt.Errorf("chunked body: %w", err)
		}
		body = d
	}
	encs := strings.Split(strings.ToLower(h["content-encoding"]), ",")
	for i := len(encs) - 1; i >= 0; i-- {
		var err error
		switch enc := strings.TrimSpace(encs[i]); enc {
		case "", "identity", "none", "utf-8", "text", "plain":
		case "gzip", "x-gzip":
			if len(body) >= 2 && body[0] == 0x1f && body[1] == 0x8b {
				body, err = readAllMax(func() (io.Reader, error) { return gzip.NewReader(bytes.NewReader(body)) }, max)
			}
		case "deflate":
			if !looksText(body) {
				var d []byte
				d, err = readAllMax(func() (io.Reader, error) { return zlib.NewReader(bytes.NewReader(body)) }, max)
				if err != nil {
					d, err = readAllMax(func() (io.Reader, error) { return flate.NewReader(bytes.NewReader(body)), nil }, max)
				}
				body = d
			}
		case "br":
			if !looksText(body) {
				body, err = readAllMax(func() (io.Reader, error) { return brotli.NewReader(bytes.NewReader(body)), nil }, max)
			}
		case "zstd":
			if len(body) >= 4 && bytes.Equal(body[:4], []byte{0x28, 0xb5, 0x2f, 0xfd}) {
				body, err = readAllMax(func() (io.Reader, error) {
					d, err := zstd.NewReader(bytes.NewReader(body), zstd.WithDecoderConcurrency(1))
					if err != nil {
						return nil, err
					}
					return d.IOReadCloser(), nil
				}, max)
			}
		default:
			return nil, fmt.Errorf("%w %q", errUnsupportedEncoding, enc)
		}
		if err != nil {
			return nil, fmt.Errorf("content-encoding %s: %w", encs[i], err)
		}
	}
	return body, nil
}

// errTooLarge is returned when a decoded body exceeds the record limit.
var errTooLarge = errors.New("decoded body exceeds the record size limit")

func readAllMax(open func() (io.Reader, error), max int64) ([]byte, error) {
	r, err := open()
	if err != nil {
		return nil, err
	}
	if c, ok := r.(io.Closer); ok {
		defer c.Close()
	}
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, errTooLarge
	}
	return b, nil
}

// looksText reports whether a body starts like markup or text rather than
// compressed bytes.
func looksText(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n\ufeff")
	if len(t) == 0 {
		return true
	}
	return t[0] == '<' || (len(b) > 0 && http.DetectContentType(b[:min(len(b), 512)]) != "application/octet-stream")
}

// looksChunked reports whether body starts with a chunk-size line.
func looksChunked(b []byte) bool {
	line, _, ok := cutLine(b[:min(len(b), 64)])
	if !ok {
		return false
	}
	size, _, _ := strings.Cut(string(line), ";")
	size = strings.TrimSpace(size)
	if size == "" {
		return false
	}
	_, err := strconv.ParseUint(size, 16, 63)
	return err == nil
}

// dechunk decodes an HTTP/1.1 chunked body. A body cut off mid-chunk
// (common in crawls with size limits) keeps what arrived.
func dechunk(b []byte) ([]byte, error) {
	out := make([]byte, 0, len(b))
	br := bufio.NewReader(bytes.NewReader(b))
	for {
		line, err := br.ReadString('\n')
		if err != nil && line == "" {
			if len(out) > 0 {
				return out, nil
			}
			return nil, errors.New("missing chunk size")
		}
		size, _, _ := strings.Cut(strings.TrimSpace(line), ";")
		n, err := strconv.ParseUint(strings.TrimSpace(size), 16, 63)
		if err != nil {
			return nil, fmt.Errorf("bad chunk size %q", truncate([]byte(line), 40))
		}
		if n == 0 {
			return out, nil
		}
		start := len(out)
		out = append(out, make([]byte, n)...)
		m, err := io.ReadFull(br, out[start:])
		if err != nil {
			return out[:start+m], nil
		}
		// CRLF after the chunk data.
		if _, err := br.ReadString('\n'); err != nil {
			return out, nil
		}
	}
}
