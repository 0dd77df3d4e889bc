package ingest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/markusmobius/go-trafilatura"
	"github.com/smelt-dev/smelt/internal/testutil"
)

// benchPages is the page set for whole-ingest benchmarks: real pages from
// the go-trafilatura module, so the benchmark runs anywhere smelt builds.
const benchPages = 200

// writeBenchWARC packs pages into a Common Crawl style WARC (one gzip
// member per record, warcinfo first, each page as an HTTP response).
func writeBenchWARC(b *testing.B, pages []string) (string, int64) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "pages.warc.gz")
	var out bytes.Buffer
	member := func(rec []byte) {
		zw := gzip.NewWriter(&out)
		zw.Write(rec)
		zw.Close()
	}
	info := "software: smelt benchmark\r\n"
	member([]byte(fmt.Sprintf("WARC/1.0\r\nWARC-Type: warcinfo\r\nWARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-000000000000>\r\nContent-Length: %d\r\n\r\n%s\r\n\r\n", len(info), info)))
	var html int64
	for i, p := range pages {
		page, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		html += int64(len(page))
		http := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n\r\n", len(page))
		block := append([]byte(http), page...)
		hdr := fmt.Sprintf("WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:%08d-0000-0000-0000-000000000000>\r\nWARC-Target-URI: https://example.org/%s\r\nWARC-Date: 2024-01-01T00:00:00Z\r\nContent-Type: application/http; msgtype=response\r\nContent-Length: %d\r\n\r\n",
			i+1, filepath.Base(p), len(block))
		member(append(append([]byte(hdr), block...), "\r\n\r\n"...))
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	return path, html
}

// BenchmarkIngestWARC is the whole ingest of a WARC of real pages: gzip,
// WARC and HTTP parsing, charset, extraction, language id and shard
// writing. Sub-benchmarks at 1 and 2 workers give the parallel speed-up;
// trafilatura-alone runs go-trafilatura on the same pages on one core,
// which is the floor smelt's 1-worker time is compared with.
func BenchmarkIngestWARC(b *testing.B) {
	pages := testutil.TrafilaturaPages(b, benchPages)
	warc, htmlBytes := writeBenchWARC(b, pages)
	b.Run("trafilatura-alone", func(b *testing.B) {
		b.SetBytes(htmlBytes)
		for i := 0; i < b.N; i++ {
			for _, p := range pages {
				f, err := os.Open(p)
				if err != nil {
					b.Fatal(err)
				}
				trafilatura.Extract(f, trafilatura.Options{ExcludeComments: true, HtmlDateMode: trafilatura.Disabled})
				f.Close()
			}
		}
		b.ReportMetric(float64(len(pages)*b.N)/b.Elapsed().Seconds(), "docs/s")
	})
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("smelt-workers=%d", workers), func(b *testing.B) {
			b.SetBytes(htmlBytes)
			for i := 0; i < b.N; i++ {
				out := b.TempDir()
				st, err := Run(context.Background(), []string{warc}, out, Options{Source: "bench", Workers: workers})
				if err != nil {
					b.Fatal(err)
				}
				if st.Out.Docs < benchPages*9/10 {
					b.Fatalf("only %d documents", st.Out.Docs)
				}
			}
			b.ReportMetric(float64(len(pages)*b.N)/b.Elapsed().Seconds(), "docs/s")
		})
	}
}
