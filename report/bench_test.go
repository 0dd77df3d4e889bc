package report

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

var (
	benchOnce sync.Once
	benchDir  string
)

// benchRun is a 200,000-document stage directory (about 60 MB of text in
// shards of 1 MiB), built once per benchmark binary.
func benchRun(b *testing.B) *Run {
	b.Helper()
	benchOnce.Do(func() {
		tmp, err := os.MkdirTemp("", "smelt-report-bench-")
		if err != nil {
			b.Fatal(err)
		}
		benchDir = filepath.Join(tmp, "big") // removed by TestMain
		bigDir(b, benchDir, 200_000)
	})
	run, err := Load(benchDir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	return run
}

func fetch(b *testing.B, url string) {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("%s: %s", url, resp.Status)
	}
	b.SetBytes(n)
}

// BenchmarkInspectPage serves a listing page in the middle of a
// 200,000-document directory: one shard opened, one or two batches read.
func BenchmarkInspectPage(b *testing.B) {
	run := benchRun(b)
	srv := httptest.NewServer(NewServer(context.Background(), run))
	defer srv.Close()
	pages := run.Steps[0].Manifest.Totals.Rows / PageSize
	fetch(b, fmt.Sprintf("%s/docs?step=big&page=%d", srv.URL, pages/2)) // batch boundaries of that shard
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fetch(b, fmt.Sprintf("%s/docs?step=big&page=%d", srv.URL, pages/2))
	}
}

// BenchmarkInspectDoc serves one document's page, cold (a new server, so
// the shard's batch boundaries are read first).
func BenchmarkInspectDoc(b *testing.B) {
	run := benchRun(b)
	rows := run.Steps[0].Manifest.Totals.Rows
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		srv := httptest.NewServer(NewServer(context.Background(), run))
		fetch(b, fmt.Sprintf("%s/doc?step=big&row=%d", srv.URL, rows-1-int64(i)%1000))
		srv.Close()
	}
}

// BenchmarkInspectSearchCold is the first search of a server: it builds
// the id/url index of all 200,000 documents.
func BenchmarkInspectSearchCold(b *testing.B) {
	run := benchRun(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		srv := httptest.NewServer(NewServer(context.Background(), run))
		fetch(b, srv.URL+"/search?q=big-0123456")
		srv.Close()
	}
}

// BenchmarkInspectSearchWarm is an exact search once the index exists.
func BenchmarkInspectSearchWarm(b *testing.B) {
	run := benchRun(b)
	srv := httptest.NewServer(NewServer(context.Background(), run))
	defer srv.Close()
	fetch(b, srv.URL+"/search?q=big-0000001")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fetch(b, fmt.Sprintf("%s/search?q=https://big.example/%d", srv.URL, (i*7919)%200_000))
	}
}

// BenchmarkReport renders the fixture run's report (reading the dropped
// side outputs for examples).
func BenchmarkReport(b *testing.B) {
	f := getFixture(b)
	run, err := Load(f.Dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var buf bytes.Buffer
		if err := Write(context.Background(), &buf, run); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(buf.Len()))
	}
}
