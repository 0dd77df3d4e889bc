package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/store"
)

// presign appends a presigned URL's query string, with secrets marked
// SECRET, signed at a given time.
func presign(u, when string) string {
	return u + "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIASECRETKEYID%2F20250101%2Fus-east-1%2Fs3%2Faws4_request" +
		"&X-Amz-Date=" + when + "&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=SECRETSIG" + when + "&token=SECRETTOKEN"
}

// S1: a presigned URL's credentials reach no output, and the same object
// signed again is the same input (same ids, same shards, resumable).
func TestRemotePresignedURLsLeaveNoSecret(t *testing.T) {
	jsonl := []byte("{\"text\": \"a first line of plain text from a presigned object\"}\n{\"text\": \"and a second line\"}\n")
	files := map[string][]byte{
		"/d/page.html":   []byte("<html><head><title>A page</title></head><body><p>Some words on a page served from an object store with a presigned link.</p></body></html>"),
		"/d/notes.txt":   []byte("notes in plain text, fetched from an object store with a presigned link"),
		"/d/lines.jsonl": jsonl,
	}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok || !strings.Contains(r.URL.RawQuery, "X-Amz-Signature=SECRETSIG") {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, filepath.Base(r.URL.Path), time.Unix(1700000000, 0), bytes.NewReader(b))
	}))
	defer s.Close()
	inputs := func(when string) []string {
		return []string{presign(s.URL+"/d/page.html", when), presign(s.URL+"/d/notes.txt", when), presign(s.URL+"/d/lines.jsonl", when)}
	}
	noSecret := func(what, text string) {
		t.Helper()
		if strings.Contains(text, "SECRET") || strings.Contains(text, "X-Amz") {
			t.Errorf("%s holds a credential: %.300s", what, text)
		}
	}
	out := t.TempDir()
	st, err := Run(context.Background(), inputs("20250101T000000Z"), out, Options{Source: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Out.Docs != 4 {
		t.Fatalf("%d documents, want 4", st.Out.Docs)
	}
	for name, b := range testutil.TreeFiles(t, out) {
		noSecret(name, string(b))
	}
	docs := testutil.ReadDocs(t, out)
	for _, d := range docs {
		noSecret("id "+d.ID, d.ID+d.Meta)
	}
	// Signed again: the finished output is the same run's.
	if _, err := Run(context.Background(), inputs("20250102T000000Z"), out, Options{Source: "s"}); err != nil {
		t.Fatalf("re-signed URLs refused: %v", err)
	}
	out2 := t.TempDir()
	if _, err := Run(context.Background(), inputs("20250103T000000Z"), out2, Options{Source: "s"}); err != nil {
		t.Fatal(err)
	}
	docs2 := testutil.ReadDocs(t, out2)
	for i := range docs {
		if docs[i].ID != docs2[i].ID {
			t.Fatalf("id changed with the signature: %s, then %s", docs[i].ID, docs2[i].ID)
		}
	}
	// Errors name the object without its credentials.
	_, err = Run(context.Background(), []string{presign(s.URL+"/d/missing.txt", "20250101T000000Z")}, t.TempDir(), Options{})
	if err == nil {
		t.Fatal("missing object: no error")
	}
	noSecret("error", err.Error())
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// W1: an object replaced mid-read, or one a server keeps cutting short
// while ignoring Range, fails the run with a retryable error; nothing is
// counted as a corrupt input and no stats are written.
func TestRemoteChangedOrShortObjectFailsRun(t *testing.T) {
	old, oldAttempts := store.BaseBackoff, store.MaxAttempts
	store.BaseBackoff, store.MaxAttempts = time.Millisecond, 3
	t.Cleanup(func() { store.BaseBackoff, store.MaxAttempts = old, oldAttempts })
	var lines bytes.Buffer
	for i := range 4000 {
		fmt.Fprintf(&lines, "{\"id\": \"d%d\", \"text\": \"line %d of a file that changes while it is read\"}\n", i, i)
	}
	v1 := gzipped(lines.Bytes())
	v2 := gzipped(bytes.ReplaceAll(lines.Bytes(), []byte("changes"), []byte("CHANGED")))
	for _, c := range []struct {
		name  string
		etag  bool
		serve func(n int64, w http.ResponseWriter, r *http.Request)
	}{
		{"etag changed", true, nil},
		{"last-modified changed", false, nil},
		{"range ignored, short body", false, func(_ int64, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(v1)))
			w.WriteHeader(http.StatusOK)
			if r.Method == http.MethodGet {
				w.Write(v1[:len(v1)/2])
				panic(http.ErrAbortHandler)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var gets atomic.Int64
			s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int64(0)
				if r.Method == http.MethodGet {
					n = gets.Add(1)
				}
				if c.serve != nil {
					c.serve(n, w, r)
					return
				}
				b, mod, tag := v1, time.Unix(1700000000, 0), `"v1"`
				if n > 1 { // replaced after the first GET began
					b, mod, tag = v2, time.Unix(1700000500, 0), `"v2"`
				}
				if c.etag {
					w.Header().Set("ETag", tag)
				}
				if n == 1 {
					w.Header().Set("Last-Modified", mod.UTC().Format(http.TimeFormat))
					w.Header().Set("Content-Length", strconv.Itoa(len(b)))
					w.WriteHeader(http.StatusOK)
					w.Write(b[:len(b)/2])
					panic(http.ErrAbortHandler) // the connection drops
				}
				http.ServeContent(w, r, "x.jsonl.gz", mod, bytes.NewReader(b))
			}))
			defer s.Close()
			out := t.TempDir()
			_, err := Run(context.Background(), []string{s.URL + "/x.jsonl.gz"}, out, Options{Source: "s", Workers: 1})
			if err == nil || !store.IsRetryable(err) {
				t.Fatalf("got %v, want a retryable failure of the run", err)
			}
			if strings.Contains(err.Error(), ErrGzipCorrupt) {
				t.Fatalf("reported as a corrupt input: %v", err)
			}
			if _, serr := shards.ReadStats(out); serr == nil {
				t.Fatal("stats written for a run that failed")
			}
			if _, merr := os.Stat(filepath.Join(out, "manifest.json")); !errors.Is(merr, os.ErrNotExist) {
				t.Fatal("a manifest was written")
			}
		})
	}
}

// W1: a server that sends no Content-Length: progress never goes
// negative, and the document is read whole.
func TestRemoteUnknownSizeProgress(t *testing.T) {
	text := strings.Repeat("plain text without a declared length. ", 200)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		// Range ignored; chunked, with no Content-Length anywhere.
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		w.Write([]byte(text))
	}))
	defer s.Close()
	var minBytes atomic.Int64
	st, err := Run(context.Background(), []string{s.URL + "/a.txt"}, t.TempDir(), Options{Source: "s",
		Progress: func(p Progress) { minBytes.Store(min(minBytes.Load(), p.Bytes, p.TotalBytes)) }})
	if err != nil {
		t.Fatal(err)
	}
	if minBytes.Load() < 0 {
		t.Fatalf("progress went negative: %d", minBytes.Load())
	}
	if st.Out.Docs != 1 {
		t.Fatalf("%d documents", st.Out.Docs)
	}
}
