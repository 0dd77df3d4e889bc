package store_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smelt-dev/smelt/ingest"
	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/store"
)

// fastRetries shortens the backoff for the test.
func fastRetries(t *testing.T) {
	old := store.BaseBackoff
	store.BaseBackoff = time.Millisecond
	t.Cleanup(func() { store.BaseBackoff = old })
}

// captureLog sends slog output to a buffer for the rest of the test.
func captureLog(t *testing.T) *testutil.SyncBuffer {
	var buf testutil.SyncBuffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	t.Cleanup(func() { slog.SetDefault(old) })
	return &buf
}

// samples are real crawl files: per-record gzip WARCs, a WET, a JSONL.
var samples = []string{
	"warc/dolma_sample-0000.warc.gz",
	"warc/dolma_sample-0001.warc.gz",
	"warc/resiliparse_CC-MAIN-2020-34_warcfile.warc.gz",
	"wet/jh_CC-MAIN-2016-50_filter_test_1.wet.gz",
	"jsonl/dolma_cc_en_head-0091.jsonl",
}

func ingestDir(t testing.TB, inputs []string, out string) *shards.Stats {
	t.Helper()
	files, err := ingest.ExpandInputs(context.Background(), inputs)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ingest.Run(context.Background(), files, out, ingest.Options{Source: "cc", Workers: 2, TargetBytes: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// sameShards fails unless both directories hold the same part files with
// the same bytes (manifests differ by design: they name the inputs).
func sameShards(t testing.TB, want, got string) {
	t.Helper()
	a, _ := filepath.Glob(filepath.Join(want, "part-*.arrow"))
	b, _ := filepath.Glob(filepath.Join(got, "part-*.arrow"))
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%d shards from the local files, %d from the store", len(a), len(b))
	}
	for i := range a {
		x, _ := os.ReadFile(a[i])
		y, _ := os.ReadFile(b[i])
		if filepath.Base(a[i]) != filepath.Base(b[i]) || !bytes.Equal(x, y) {
			t.Fatalf("%s and %s differ", a[i], b[i])
		}
	}
}

// flakyServer serves dir over HTTP with Range support, but cuts the
// connection after dropAfter bytes of every response body, and answers 503
// to the first fail503 requests.
type flakyServer struct {
	dir       string
	dropAfter int64
	fail503   int32
	requests  atomic.Int32
	drops     atomic.Int32
	ranged    atomic.Int32
	mu        sync.Mutex
	ranges    []string // the Range headers of the GETs, in order
}

func (s *flakyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.requests.Add(1)
	if n <= s.fail503 {
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	f, err := os.Open(filepath.Join(s.dir, filepath.FromSlash(strings.TrimPrefix(r.URL.Path, "/"))))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, _ := f.Stat()
	if r.Header.Get("Range") != "" {
		s.ranged.Add(1)
	}
	if r.Method == http.MethodGet {
		s.mu.Lock()
		s.ranges = append(s.ranges, r.Header.Get("Range"))
		s.mu.Unlock()
	}
	w.Header().Set("ETag", fmt.Sprintf(`"%x-%x"`, fi.Size(), fi.ModTime().UnixNano()))
	if s.dropAfter > 0 {
		w = &dropWriter{ResponseWriter: w, left: s.dropAfter, s: s}
	}
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
}

type dropWriter struct {
	http.ResponseWriter
	left int64
	s    *flakyServer
}

func (d *dropWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > d.left {
		n, _ := d.ResponseWriter.Write(p[:d.left])
		d.left = 0
		d.ResponseWriter.(http.Flusher).Flush()
		d.s.drops.Add(1)
		// Abort: the server closes the connection mid-body.
		_ = n
		panic(http.ErrAbortHandler)
	}
	d.left -= int64(len(p))
	return d.ResponseWriter.Write(p)
}

// copySamples puts the sample files into one directory, returning it and
// their local paths.
func copySamples(t *testing.T) (string, []string) {
	dir := t.TempDir()
	var local []string
	for _, s := range samples {
		src := testutil.SharedData(t, s)
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.Base(s))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		local = append(local, p)
	}
	return dir, local
}

func TestHTTPDroppedConnectionsResume(t *testing.T) {
	fastRetries(t)
	dir, local := copySamples(t)
	fs := &flakyServer{dir: dir, dropAfter: 8 << 10}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	logs := captureLog(t)

	var urls []string
	for _, p := range local {
		urls = append(urls, srv.URL+"/"+filepath.Base(p))
	}
	want, got := t.TempDir(), t.TempDir()
	wst := ingestDir(t, local, want)
	gst := ingestDir(t, urls, got)
	sameShards(t, want, got)
	if wst.Out.Docs != gst.Out.Docs || gst.Out.Docs == 0 {
		t.Fatalf("%d documents from the files, %d over HTTP", wst.Out.Docs, gst.Out.Docs)
	}
	if fs.drops.Load() < 20 || fs.ranged.Load() < fs.drops.Load() {
		t.Fatalf("the server dropped %d connections and got %d ranged requests: the test did not exercise resuming", fs.drops.Load(), fs.ranged.Load())
	}
	if n := strings.Count(logs.String(), "resuming with a range request"); n < int(fs.drops.Load())/2 {
		t.Fatalf("log shows %d resumes for %d dropped connections:\n%.2000s", n, fs.drops.Load(), logs.String())
	}
	t.Logf("%d connections dropped, %d ranged requests, %d documents", fs.drops.Load(), fs.ranged.Load(), gst.Out.Docs)
}

func TestHTTP503TwiceThenServes(t *testing.T) {
	fastRetries(t)
	dir, local := copySamples(t)
	fs := &flakyServer{dir: dir, fail503: 2}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	logs := captureLog(t)
	want, got := t.TempDir(), t.TempDir()
	ingestDir(t, local[:1], want)
	ingestDir(t, []string{srv.URL + "/" + filepath.Base(local[0])}, got)
	sameShards(t, want, got)
	if n := strings.Count(logs.String(), "store: retrying"); n != 2 {
		t.Fatalf("want 2 retries in the log, got %d:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "503") {
		t.Fatalf("the log does not say why it retried:\n%s", logs.String())
	}
}

func TestHTTPErrors(t *testing.T) {
	fastRetries(t)
	dir, _ := copySamples(t)
	srv := httptest.NewServer(&flakyServer{dir: dir})
	defer srv.Close()
	_, err := ingest.ExpandInputs(context.Background(), []string{srv.URL + "/missing.warc.gz?token=SECRET"})
	if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("missing URL: %v", err)
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("the error shows the query string: %v", err)
	}
	_, err = ingest.ExpandInputs(context.Background(), []string{"ftp://example.org/x.warc.gz"})
	if !errors.Is(err, store.ErrUnknownScheme) || !strings.Contains(err.Error(), `"ftp"`) {
		t.Fatalf("unknown scheme: %v", err)
	}
	_, err = ingest.ExpandInputs(context.Background(), []string{"gs://bucket/x.warc.gz"})
	if !errors.Is(err, store.ErrUnknownScheme) || !strings.Contains(err.Error(), "storage.googleapis.com") {
		t.Fatalf("gs scheme: %v", err)
	}
}

func TestObjectReadAtAndSeek(t *testing.T) {
	fastRetries(t)
	dir, local := copySamples(t)
	srv := httptest.NewServer(&flakyServer{dir: dir, dropAfter: 5000})
	defer srv.Close()
	data, _ := os.ReadFile(local[0])
	f, err := store.Open(context.Background(), srv.URL+"/"+filepath.Base(local[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Size() != int64(len(data)) {
		t.Fatalf("size %d, want %d", f.Size(), len(data))
	}
	for _, off := range []int64{0, 1, 4999, 5000, 77777, int64(len(data)) - 10} {
		p := make([]byte, 12000)
		n, err := f.ReadAt(p, off)
		want := data[off:min(int64(len(data)), off+12000)]
		if !bytes.Equal(p[:n], want) || (n < len(p) && err != io.EOF) {
			t.Fatalf("ReadAt(%d): %d bytes, err %v", off, n, err)
		}
	}
	if _, err := f.Seek(100000, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(rest, data[100000:]) {
		t.Fatalf("read after seek: %d bytes, err %v", len(rest), err)
	}
}

func TestPathListOverHTTP(t *testing.T) {
	dir, local := copySamples(t)
	var list bytes.Buffer
	for _, p := range local {
		fmt.Fprintf(&list, "%s\n", filepath.Base(p))
	}
	if err := os.MkdirAll(filepath.Join(dir, "lists"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "lists", "warc.paths"), list.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&flakyServer{dir: dir})
	defer srv.Close()
	files, err := ingest.ExpandInputs(context.Background(), []string{srv.URL + "/lists/warc.paths"})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(local) || files[0] != srv.URL+"/"+filepath.Base(local[0]) {
		t.Fatalf("expanded to %v", files)
	}
	// Gzipped, as Common Crawl ships them.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(list.Bytes())
	zw.Close()
	if err := os.WriteFile(filepath.Join(dir, "lists", "warc.paths.gz"), gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if again, err := ingest.ExpandInputs(context.Background(), []string{srv.URL + "/lists/warc.paths.gz"}); err != nil || strings.Join(again, " ") != strings.Join(files, " ") {
		t.Fatalf("gzipped list: %v %v", again, err)
	}
	// A local list needs its base.
	lp := filepath.Join(dir, "lists", "warc.paths")
	if _, err := ingest.ExpandInputs(context.Background(), []string{"paths:" + lp}); err == nil || !strings.Contains(err.Error(), "base") {
		t.Fatalf("local list without base: %v", err)
	}
	files, err = ingest.ExpandInputs(context.Background(), []string{"paths:" + lp + "?base=" + srv.URL + "/"})
	if err != nil || len(files) != len(local) {
		t.Fatalf("local list with base: %v %v", files, err)
	}
}

// TestParquetOverFlakyHTTP reads a Parquet file (the sample shipped in the
// Arrow module) through ranged ReadAt requests that the server cuts short:
// the documents are those of the local file.
func TestParquetOverFlakyHTTP(t *testing.T) {
	fastRetries(t)
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/apache/arrow/go/v17").Output()
	if err != nil {
		t.Skipf("cannot locate the Arrow module: %v", err)
	}
	src := filepath.Join(strings.TrimSpace(string(out)), "parquet", "cmd", "parquet_reader", "v0.7.1.parquet")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Skipf("Arrow's sample Parquet file is not in the module cache: %v", err)
	}
	dir := t.TempDir()
	local := filepath.Join(dir, "diamonds.parquet")
	if err := os.WriteFile(local, data, 0o644); err != nil {
		t.Fatal(err)
	}
	fs := &flakyServer{dir: dir, dropAfter: 700}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	opt := ingest.Options{Source: "pq", Workers: 1, Reader: ingest.ReaderOptions{TextField: "cut"}}
	want, got := t.TempDir(), t.TempDir()
	if _, err := ingest.Run(context.Background(), []string{local}, want, opt); err != nil {
		t.Fatal(err)
	}
	st, err := ingest.Run(context.Background(), []string{srv.URL + "/diamonds.parquet"}, got, opt)
	if err != nil {
		t.Fatal(err)
	}
	sameShards(t, want, got)
	if st.Out.Docs == 0 || fs.drops.Load() == 0 {
		t.Fatalf("%d documents, %d dropped connections", st.Out.Docs, fs.drops.Load())
	}
}

// TestLargeGzipMemberOverHTTP reads a gzip file whose second member holds
// more than the 2 MiB ingest checks in memory (real JSONL lines, repeated):
// ingest checks the member's CRC in a first pass, then seeks back to the
// member's start and decompresses it again to serve it. From a URL that
// seek is a ranged GET from the member's offset, not a spool to disk, and
// the shards are those of the local file, also when connections drop.
func TestLargeGzipMemberOverHTTP(t *testing.T) {
	fastRetries(t)
	lines, err := os.ReadFile(testutil.SharedData(t, "jsonl/dolma_cc_en_head-0091.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	gzipMember := func(data []byte) {
		zw := gzip.NewWriter(&file)
		if _, err := zw.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	first := lines[:bytes.IndexByte(lines, '\n')+1]
	gzipMember(first)
	second := int64(file.Len()) // the big member's offset
	big := bytes.Repeat(lines, (3<<20)/len(lines)+1)
	gzipMember(big)
	dir := t.TempDir()
	local := filepath.Join(dir, "big.jsonl.gz")
	if err := os.WriteFile(local, file.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	want := t.TempDir()
	wst := ingestDir(t, []string{local}, want)
	if wst.Out.Docs < 2 {
		t.Fatalf("%d documents from the local file", wst.Out.Docs)
	}
	for _, drop := range []int64{0, 256 << 10} {
		t.Run(fmt.Sprintf("drop-after-%d", drop), func(t *testing.T) {
			fs := &flakyServer{dir: dir, dropAfter: drop}
			srv := httptest.NewServer(fs)
			defer srv.Close()
			got := t.TempDir()
			gst := ingestDir(t, []string{srv.URL + "/big.jsonl.gz"}, got)
			sameShards(t, want, got)
			if gst.Out.Docs != wst.Out.Docs {
				t.Fatalf("%d documents over HTTP, %d from the file", gst.Out.Docs, wst.Out.Docs)
			}
			fs.mu.Lock()
			defer fs.mu.Unlock()
			again := fmt.Sprintf("bytes=%d-", second)
			n := 0
			for _, r := range fs.ranges {
				if r == again {
					n++
				}
			}
			if n == 0 {
				t.Fatalf("no GET went back to the big member at byte %d (the second pass); the GETs' ranges: %q", second, fs.ranges)
			}
			if drop > 0 && fs.drops.Load() == 0 {
				t.Fatal("no connection was dropped")
			}
		})
	}
}
