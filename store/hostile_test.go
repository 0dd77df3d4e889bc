package store_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smelt-dev/smelt/store"
)

// body is the object the hostile servers serve.
var body = bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16)

func readAll(t *testing.T, ctx context.Context, u string) ([]byte, *store.Object, error) {
	t.Helper()
	f, err := store.Open(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	return b, f.(*store.Object), err
}

// S2: redirects keep to the scheme and host the user named.
func TestRedirectPolicy(t *testing.T) {
	fastRetries(t)
	var bHits atomic.Int64
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bHits.Add(1)
		http.ServeContent(w, r, "x.txt", time.Time{}, bytes.NewReader(body))
	}))
	defer b.Close()
	_, bPort, _ := net.SplitHostPort(b.Listener.Addr().String())
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/same":
			http.Redirect(w, r, "/real.txt?X-Amz-Signature=REDIRSECRET", http.StatusFound)
		case "/other":
			http.Redirect(w, r, b.URL+"/x.txt?X-Amz-Signature=REDIRSECRET", http.StatusFound)
		case "/byname":
			http.Redirect(w, r, "http://localhost:"+bPort+"/x.txt", http.StatusFound)
		case "/metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		case "/real.txt":
			http.ServeContent(w, r, "real.txt", time.Time{}, bytes.NewReader(body))
		}
	}))
	defer a.Close()

	// A redirect on the named host is followed.
	got, _, err := readAll(t, context.Background(), a.URL+"/same")
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("same-host redirect: %v (%d bytes)", err, len(got))
	}
	// To another port of the same loopback address: refused by default.
	_, _, err = readAll(t, context.Background(), a.URL+"/other")
	if !errors.Is(err, store.ErrRedirect) || strings.Contains(err.Error(), "REDIRSECRET") {
		t.Fatalf("cross-host redirect: got %v, want ErrRedirect without the signature", err)
	}
	// Allowed to other hosts, still never to a loopback, link-local or
	// private address the user did not name: by address, by a name that
	// resolves there, and the cloud metadata address.
	allow := store.WithPolicy(context.Background(), store.Policy{IdleTimeout: store.DefaultIdleTimeout, AllowRedirectHosts: true})
	for _, p := range []string{"/other", "/byname", "/metadata"} {
		_, _, err = readAll(t, allow, a.URL+p)
		if !errors.Is(err, store.ErrForbiddenAddress) {
			t.Fatalf("%s with redirects allowed: got %v, want ErrForbiddenAddress", p, err)
		}
	}
	if n := bHits.Load(); n != 0 {
		t.Fatalf("the host no one named got %d requests", n)
	}
	// Named by the user, the same server is read.
	if got, _, err := readAll(t, context.Background(), b.URL+"/x.txt"); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("named loopback host: %v", err)
	}
}

// stallServer answers the first GET with its headers and 100 bytes, then
// sends nothing until the client goes away; later requests are served.
func stallServer(t *testing.T, stallAll bool, sent chan<- struct{}) *httptest.Server {
	var gets atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && (gets.Add(1) == 1 || stallAll) {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusOK)
			w.Write(body[:100])
			w.(http.Flusher).Flush()
			if sent != nil {
				select {
				case sent <- struct{}{}:
				default:
				}
			}
			<-r.Context().Done() // stalled until the client hangs up
			return
		}
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "x.bin", time.Time{}, bytes.NewReader(body))
	}))
	t.Cleanup(s.Close)
	return s
}

// idle returns a context whose reads have idle timeout d.
func idle(d time.Duration) context.Context {
	return store.WithPolicy(context.Background(), store.Policy{IdleTimeout: d})
}

// H1: a body that stalls is dropped after the idle timeout and the read
// resumes with a range request; one that always stalls fails clearly.
func TestIdleTimeoutResumes(t *testing.T) {
	fastRetries(t)
	ctx := idle(100 * time.Millisecond)
	s := stallServer(t, false, nil)
	got, o, err := readAll(t, ctx, s.URL+"/x.bin")
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read: %v (%d of %d bytes)", err, len(got), len(body))
	}
	if o.Resumes() == 0 {
		t.Fatal("no resume counted")
	}
	old := store.MaxAttempts
	store.MaxAttempts = 2
	t.Cleanup(func() { store.MaxAttempts = old })
	s2 := stallServer(t, true, nil)
	_, _, err = readAll(t, ctx, s2.URL+"/x.bin")
	if !store.IsRetryable(err) || !strings.Contains(err.Error(), "idle timeout") {
		t.Fatalf("always stalling: got %v, want a retryable idle-timeout error", err)
	}
}

// H1: cancelling (SIGTERM) ends a stalled read at once, with no idle
// timeout to wait for.
func TestCancelEndsStalledRead(t *testing.T) {
	sent := make(chan struct{}, 1)
	s := stallServer(t, true, sent)
	ctx, cancel := context.WithCancel(idle(0))
	go func() { <-sent; cancel() }()
	_, _, err := readAll(t, ctx, s.URL+"/x.bin")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// rawServer serves body over raw HTTP/1.1 answers written by hand, to
// model servers net/http's own would not be: cut-off bodies, no
// Content-Length, Range ignored.
func rawServer(t *testing.T, answer func(n int64, method string, rng int64, w *bufio.Writer) (keep bool)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					rng := int64(-1)
					if r := req.Header.Get("Range"); r != "" {
						fmt.Sscanf(r, "bytes=%d-", &rng)
					}
					w := bufio.NewWriter(c)
					keep := answer(n.Add(1), req.Method, rng, w)
					w.Flush()
					if !keep {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// W1: a server that ignores Range and cuts every body short fails the read
// with a retryable error, never a short object taken as whole.
func TestShortBodyIgnoringRangeIsRetryable(t *testing.T) {
	fastRetries(t)
	old := store.MaxAttempts
	store.MaxAttempts = 3
	t.Cleanup(func() { store.MaxAttempts = old })
	u := rawServer(t, func(_ int64, method string, _ int64, w *bufio.Writer) bool {
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nLast-Modified: Mon, 02 Jan 2006 15:04:05 GMT\r\n\r\n", len(body))
		if method == http.MethodHead {
			return true
		}
		w.Write(body[:len(body)/2])
		return false
	})
	got, _, err := readAll(t, context.Background(), u+"/x.txt")
	if !store.IsRetryable(err) {
		t.Fatalf("got %v after %d bytes, want a retryable error", err, len(got))
	}
}

// W1: without an ETag, a changed Last-Modified or size on resume is a
// changed object.
func TestChangedWithoutETagIsDetected(t *testing.T) {
	fastRetries(t)
	u := rawServer(t, func(n int64, method string, rng int64, w *bufio.Writer) bool {
		lm := "Mon, 02 Jan 2006 15:04:05 GMT"
		if n > 2 { // HEAD, the first GET, then a new version
			lm = "Tue, 03 Jan 2006 15:04:05 GMT"
		}
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nLast-Modified: %s\r\n\r\n", len(body), lm)
		if method == http.MethodHead {
			return true
		}
		w.Write(body[:len(body)/2])
		return false
	})
	_, _, err := readAll(t, context.Background(), u+"/x.txt")
	if !errors.Is(err, store.ErrChanged) || !store.IsRetryable(err) {
		t.Fatalf("got %v, want ErrChanged", err)
	}
}

// W1: a server that gives no size anywhere and closes a body early: the
// end is confirmed with a range request from there, which brings the rest.
func TestUnknownSizeTruncatedBodyResumes(t *testing.T) {
	fastRetries(t)
	u := rawServer(t, func(n int64, method string, rng int64, w *bufio.Writer) bool {
		switch {
		case method == http.MethodHead:
			w.WriteString("HTTP/1.1 200 OK\r\n\r\n")
			return true
		case rng < 0:
			w.WriteString("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
			w.Write(body[:len(body)/3]) // cut short, and nothing says so
		case rng >= int64(len(body)):
			w.WriteString("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		case rng == 0:
			w.WriteString("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-0/*\r\nContent-Length: 1\r\nConnection: close\r\n\r\n")
			w.Write(body[:1])
		default:
			fmt.Fprintf(w, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %d-%d/*\r\nConnection: close\r\n\r\n", rng, len(body)-1)
			w.Write(body[rng:])
		}
		return false
	})
	got, _, err := readAll(t, context.Background(), u+"/x.txt")
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("got %d of %d bytes, err %v", len(got), len(body), err)
	}
}
