package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// HTTPClient makes the http(s) requests. Its zero timeout is deliberate:
// bodies of whole WARC files take minutes; a stalled connection is caught
// by the transport's header timeout and the idle-read timeout of every
// body (the context Policy's IdleTimeout). Redirects follow
// checkRedirect, and connections to loopback, link-local and private
// addresses are refused unless the user named that host (guardedDial).
var HTTPClient = newHTTPClient()

// httpBackend reads http:// and https:// URLs: HEAD for the size, GET with
// a Range header to read from an offset (If-Range guards against the object
// changing between requests).
type httpBackend struct{}

// statusError turns an HTTP answer into an error: 404/410 not found,
// 401/403 denied, 5xx and 429 transient.
func statusError(u string, resp *http.Response) error {
	err := fmt.Errorf("%s: HTTP %s", Redact(u), resp.Status)
	switch c := resp.StatusCode; {
	case c == http.StatusNotFound || c == http.StatusGone:
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case c == http.StatusUnauthorized || c == http.StatusForbidden:
		return fmt.Errorf("%w: %w", ErrDenied, err)
	case c >= 500 || c == http.StatusTooManyRequests || c == http.StatusRequestTimeout:
		return &transientError{err}
	}
	return err
}

func (httpBackend) stat(ctx context.Context, u string) (Info, error) {
	req, err := http.NewRequestWithContext(withNamed(ctx, u), http.MethodHead, u, nil)
	if err != nil {
		return Info{}, fmt.Errorf("%s: %w", Redact(u), err)
	}
	resp, err := HTTPClient.Do(req)
	if err != nil {
		return Info{}, fmt.Errorf("stat %s: %w", Redact(u), unwrapURLError(err))
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotImplemented ||
		(resp.StatusCode == http.StatusOK && resp.ContentLength < 0) {
		// No HEAD, or no size in its answer: a one-byte GET's
		// Content-Range may say.
		return statByGet(ctx, u)
	}
	if resp.StatusCode != http.StatusOK {
		return Info{}, statusError(u, resp)
	}
	return infoFromHeader(u, resp.Header, resp.ContentLength), nil
}

// statByGet asks for the first byte when a server refuses HEAD.
func statByGet(ctx context.Context, u string) (Info, error) {
	req, err := http.NewRequestWithContext(withNamed(ctx, u), http.MethodGet, u, nil)
	if err != nil {
		return Info{}, err
	}
	req.Header.Set("Range", "bytes=0-0")
	resp, err := HTTPClient.Do(req)
	if err != nil {
		return Info{}, fmt.Errorf("stat %s: %w", Redact(u), unwrapURLError(err))
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		size := int64(-1)
		if cr := resp.Header.Get("Content-Range"); cr != "" {
			if i := strings.LastIndexByte(cr, '/'); i >= 0 {
				if n, err := strconv.ParseInt(cr[i+1:], 10, 64); err == nil {
					size = n
				}
			}
		}
		return infoFromHeader(u, resp.Header, size), nil
	case http.StatusOK:
		return infoFromHeader(u, resp.Header, resp.ContentLength), nil
	}
	return Info{}, statusError(u, resp)
}

func infoFromHeader(u string, h http.Header, size int64) Info {
	in := Info{Path: u, Size: size, ETag: h.Get("ETag")}
	if t, err := http.ParseTime(h.Get("Last-Modified")); err == nil {
		in.ModTime = t
	}
	return in
}

func (b httpBackend) open(ctx context.Context, u string, off int64, want Info) (io.ReadCloser, error) {
	return b.openRange(ctx, u, off, -1, want)
}

func (httpBackend) openRange(ctx context.Context, u string, off, n int64, want Info) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(withNamed(ctx, u), http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Redact(u), err)
	}
	ranged := off > 0 || n >= 0
	if ranged {
		if n >= 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
		} else {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
		}
		// The rest of the same version, or the whole new one (which we
		// refuse below) if the object changed.
		if want.ETag != "" {
			req.Header.Set("If-Range", want.ETag)
		} else if !want.ModTime.IsZero() {
			req.Header.Set("If-Range", want.ModTime.UTC().Format(http.TimeFormat))
		}
	}
	resp, err := HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", Redact(u), unwrapURLError(err))
	}
	switch {
	case ranged && resp.StatusCode == http.StatusPartialContent:
		if !strings.HasPrefix(resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-", off)) {
			resp.Body.Close()
			return nil, fmt.Errorf("%s: asked for bytes from %d, got range %q: %w", Redact(u), off, resp.Header.Get("Content-Range"), ErrRetry)
		}
		return resp.Body, nil
	case ranged && resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && want.Size < 0 && n < 0:
		// Reading on past the end of an object of unknown size: the
		// server confirms the end.
		resp.Body.Close()
		return http.NoBody, nil
	case resp.StatusCode == http.StatusOK:
		// The whole object: the first request, or a server that ignores
		// Range (or an If-Range that no longer matches).
		if err := sameVersion(u, want, resp); err != nil {
			resp.Body.Close()
			return nil, err
		}
		if !ranged {
			return resp.Body, nil
		}
		// The same version from its first byte: skip to off (a server
		// without Range support costs the bytes before off again).
		if _, err := io.CopyN(io.Discard, resp.Body, off); err != nil {
			resp.Body.Close()
			return nil, &transientError{fmt.Errorf("%s: the server ignores Range; skipping to byte %d: %w", Redact(u), off, err)}
		}
		if n < 0 {
			return resp.Body, nil
		}
		return struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, n), resp.Body}, nil
	}
	resp.Body.Close()
	return nil, statusError(u, resp)
}

// sameVersion checks a full answer against the object as first seen: its
// ETag where both have one, else its size and Last-Modified where known.
func sameVersion(u string, want Info, resp *http.Response) error {
	if et := resp.Header.Get("ETag"); want.ETag != "" && et != "" {
		if et != want.ETag {
			return fmt.Errorf("%s: %w (ETag %s, then %s)", Redact(u), ErrChanged, want.ETag, et)
		}
		return nil
	}
	if want.Size >= 0 && resp.ContentLength >= 0 && resp.ContentLength != want.Size {
		return fmt.Errorf("%s: %w (size %d, then %d)", Redact(u), ErrChanged, want.Size, resp.ContentLength)
	}
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil && !want.ModTime.IsZero() && !lm.Equal(want.ModTime) {
		return fmt.Errorf("%s: %w (Last-Modified %s, then %s)", Redact(u), ErrChanged,
			want.ModTime.UTC().Format(http.TimeFormat), lm.UTC().Format(http.TimeFormat))
	}
	return nil
}

// list has no meaning over plain HTTP: a URL names one file.
func (httpBackend) list(_ context.Context, prefix string) ([]Info, error) {
	return nil, fmt.Errorf("%s: an http(s) URL names one file; it cannot be listed (use a paths list)", Redact(prefix))
}

func (httpBackend) put(_ context.Context, u string, _ io.Reader, _ int64) error {
	return fmt.Errorf("%s: http(s) URLs are read-only; write outputs to a directory or an s3:// URL", Redact(u))
}

func (httpBackend) remove(_ context.Context, u string) error {
	return fmt.Errorf("%s: http(s) URLs are read-only", Redact(u))
}

// unwrapURLError drops *url.Error's copy of the URL (which may hold a
// query string with credentials); callers add the redacted URL. A
// connection closed before any answer (io.EOF) is worth another try.
func unwrapURLError(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	if errors.Is(ue.Err, io.EOF) {
		return &transientError{fmt.Errorf("connection closed before an answer: %w", io.ErrUnexpectedEOF)}
	}
	return ue.Err
}
