package ingest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/markusmobius/go-trafilatura"
	"golang.org/x/net/html"
)

// loadBenchPages loads the real pages shipped in go-trafilatura (947 in v1.12.2)
// as HTML records, so benchmarks need nothing outside the module cache.
func loadBenchPages(b *testing.B) ([]*Record, [][]byte, int64) {
	b.Helper()
	files := comparisonPages(b, 0)
	var recs []*Record
	var raws [][]byte
	var total int64
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, &Record{File: f, Key: filepath.Base(f), Kind: PayloadHTML, ContentType: "text/html", Body: raw})
		raws = append(raws, raw)
		total += int64(len(raw))
	}
	return recs, raws, total
}

// readerBenchWARC writes the comparison pages as a per-record gzip WARC (as Common
// Crawl ships) and a plain one; it returns both paths and the uncompressed size.
func readerBenchWARC(b *testing.B) (gzPath, plainPath string, size int64) {
	b.Helper()
	_, raws, _ := loadBenchPages(b)
	var plain, perRec bytes.Buffer
	info := warcRec{typ: "warcinfo", id: "urn:uuid:info", ctype: "application/warc-fields", block: []byte("software: smelt-bench\r\n")}
	plain.Write(info.bytes("1.0"))
	perRec.Write(gzipBytes(b, info.bytes("1.0")))
	for i, raw := range raws {
		uri := fmt.Sprintf("https://bench.example/%d", i)
		for _, r := range []warcRec{
			{typ: "request", id: fmt.Sprintf("urn:uuid:q%d", i), uri: uri, ctype: "application/http; msgtype=request", block: []byte("GET / HTTP/1.1\r\nHost: bench.example\r\n\r\n")},
			{typ: "response", id: fmt.Sprintf("urn:uuid:r%d", i), uri: uri, ctype: "application/http; msgtype=response", block: httpResp(200, "Content-Type: text/html", raw)},
		} {
			rb := r.bytes("1.0")
			plain.Write(rb)
			perRec.Write(gzipBytes(b, rb))
		}
	}
	dir := b.TempDir()
	return writeTestFile(b, dir, "bench.warc.gz", perRec.Bytes()), writeTestFile(b, dir, "bench.warc", plain.Bytes()), int64(plain.Len())
}

// BenchmarkWARCParse measures the WARC reader alone (decompression, header
// parsing, payload reads), in uncompressed MB/s.
func BenchmarkWARCParse(b *testing.B) {
	gzPath, plainPath, size := readerBenchWARC(b)
	// The floor: decompressing the same file with klauspost gzip and nothing else.
	b.Run("gunzip-only", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			f, err := os.Open(gzPath)
			if err != nil {
				b.Fatal(err)
			}
			zr, err := kgzip.NewReader(bufio.NewReaderSize(f, 256<<10))
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, zr); err != nil || n != size {
				b.Fatalf("%d bytes, %v", n, err)
			}
			f.Close()
		}
	})
	for _, c := range []struct{ name, path string }{{"per-record-gzip", gzPath}, {"plain", plainPath}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				r, err := Open(c.path, FormatWARC, ReaderOptions{})
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for {
					_, err := r.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				r.Close()
				if n != 1+2*947 && n < 3 {
					b.Fatalf("%d records", n)
				}
			}
		})
	}
}

// BenchmarkConvert measures Convert (charset, HTML parse, go-trafilatura,
// language id, metadata) on the real pages: one op is one page.
func BenchmarkConvert(b *testing.B) {
	recs, _, total := loadBenchPages(b)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var bytesDone int64
	for i := 0; i < b.N; i++ {
		rec := recs[i%len(recs)]
		bytesDone += int64(len(rec.Body))
		if _, _, err := Convert(rec, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	sec := time.Since(start).Seconds()
	b.ReportMetric(float64(b.N)/sec, "docs/s")
	b.ReportMetric(float64(bytesDone)/sec/1e6, "MB/s")
	_ = total
}

// BenchmarkConvertVsTrafilatura runs smelt's Convert and go-trafilatura
// alone on the same pages, interleaved page by page so that all see the
// same machine load (the machine is shared), and reports Convert's overhead
// in percent (goal: at most 15) against two peers:
//   - trafilatura.Extract on the raw page, the library's entry point (it
//     runs chardet over every page before parsing);
//   - html.Parse + trafilatura.ExtractDocument, the extraction core alone,
//     which is what Convert adds charset handling, language id and
//     metadata to.
//
// Both peers use the same options (ExtractOptions).
func BenchmarkConvertVsTrafilatura(b *testing.B) {
	recs, raws, _ := loadBenchPages(b)
	var smelt, peer, core time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % len(recs)
		t0 := time.Now()
		if _, _, err := Convert(recs[k], "bench"); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		_, _ = trafilatura.Extract(bytes.NewReader(raws[k]), ExtractOptions(""))
		t2 := time.Now()
		if doc, err := html.Parse(bytes.NewReader(raws[k])); err == nil {
			_, _ = trafilatura.ExtractDocument(doc, ExtractOptions(""))
		}
		core += time.Since(t2)
		peer += t2.Sub(t1)
		smelt += t1.Sub(t0)
	}
	n := float64(b.N)
	b.ReportMetric(float64(smelt.Nanoseconds())/n, "smelt-ns/page")
	b.ReportMetric(float64(peer.Nanoseconds())/n, "extract-ns/page")
	b.ReportMetric(float64(core.Nanoseconds())/n, "core-ns/page")
	b.ReportMetric(100*(smelt.Seconds()/peer.Seconds()-1), "overhead-vs-extract-%")
	b.ReportMetric(100*(smelt.Seconds()/core.Seconds()-1), "overhead-vs-core-%")
}

// BenchmarkLanguageID measures DetectLanguage on extracted page texts.
func BenchmarkLanguageID(b *testing.B) {
	recs, _, _ := loadBenchPages(b)
	var texts []string
	for _, r := range recs[:200] {
		if d, _, _ := Convert(r, "b"); d != nil {
			texts = append(texts, d.Text)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		DetectLanguage(texts[i%len(texts)])
	}
}
