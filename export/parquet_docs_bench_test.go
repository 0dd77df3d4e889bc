package export

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/klauspost/compress/zstd"
	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
)

var (
	benchDocsOnce  sync.Once
	benchDocsParts [][]*shards.Document
	benchDocsErr   error
)

// benchDocs makes about 100 MB of documents of real text, cut into parts
// of 1 MiB (one shard each): paragraphs of the clean texts in
// ../shared/data (WikiText-2, the Jargon File, the King James Bible,
// Shakespeare) joined into documents of 0.5 to 8 KB; the corpus is
// repeated with every letter rotated by the repetition's number, so that
// no repetition is a byte copy of another (which zstd would find in
// pqarrow's 8 MiB pages and so flatter its size).
func benchDocs(b *testing.B) [][]*shards.Document {
	b.Helper()
	var paras []string
	for _, f := range []string{"wikitext-2_valid.txt", "wikitext-2_test.txt", "debian_jargon-text_4.4.7_jargon.txt.gz", "debian_bible-kjv-text_4.38_kjv.txt.gz", "tinyshakespeare.txt"} {
		data, err := os.ReadFile(testutil.SharedData(b, "clean_text/"+f))
		if err != nil {
			b.Fatal(err)
		}
		if strings.HasSuffix(f, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				b.Fatal(err)
			}
			if data, err = io.ReadAll(zr); err != nil {
				b.Fatal(err)
			}
		}
		for _, p := range strings.Split(string(data), "\n\n") {
			if p = strings.TrimSpace(p); len(p) > 40 {
				paras = append(paras, p)
			}
		}
	}
	benchDocsOnce.Do(func() {
		r := rand.New(rand.NewPCG(28, 1))
		var docs []*shards.Document
		var total int64
		for rep := 0; total < 100e6; rep++ {
			rot := func(c rune) rune {
				switch {
				case c >= 'a' && c <= 'z':
					return 'a' + (c-'a'+rune(rep))%26
				case c >= 'A' && c <= 'Z':
					return 'A' + (c-'A'+rune(rep))%26
				}
				return c
			}
			for i := 0; i < len(paras) && total < 100e6; {
				want := 500 + r.IntN(7500)
				var sb strings.Builder
				for ; i < len(paras) && sb.Len() < want; i++ {
					sb.WriteString(strings.Map(rot, paras[i]))
					sb.WriteString("\n\n")
				}
				n := len(docs)
				d := &shards.Document{ID: fmt.Sprintf("bench/%07d", n), Source: "bench", URL: fmt.Sprintf("https://example.org/%d/%d", rep, n),
					Date: "2024-01-01T00:00:00Z", Lang: "en", LangScore: float64(n%1000) / 1000, Text: sb.String()}
				if n%2 == 0 {
					d.Quality, d.HasQuality = float64(n%997)/997, true
				}
				docs = append(docs, d)
				total += shards.DocBytes(d)
			}
		}
		var part []*shards.Document
		var n int64
		for _, d := range docs {
			part = append(part, d)
			if n += shards.DocBytes(d); n >= 1<<20 {
				benchDocsParts, part, n = append(benchDocsParts, part), nil, 0
			}
		}
		if len(part) > 0 {
			benchDocsParts = append(benchDocsParts, part)
		}
	})
	if benchDocsErr != nil {
		b.Fatal(benchDocsErr)
	}
	return benchDocsParts
}

// pqarrowDocs exports a document-shard input to Parquet the way smelt
// did before content-defined pages (main at 5deccb4, export/parquet.go):
// pqarrow, 8 MiB pages, dictionaries for source and lang, zstd level 3;
// each file published as Run publishes it (atomic, fsynced). The
// baseline of BenchmarkParquetDocs.
func pqarrowDocs(b *testing.B, in *Input, out string) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		b.Fatal(err)
	}
	e := &perShard{out: out}
	schema := ParquetDocSchema()
	for i, info := range in.Manifest.Shards {
		err := e.write(fmt.Sprintf("part-%05d.parquet", i), FileInfo{}, func(w io.Writer, fi *FileInfo) error {
			fw, err := pqarrow.NewFileWriter(schema, w, writerProps(compress.Codecs.Zstd), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
			if err != nil {
				return err
			}
			rb := array.NewRecordBuilder(memory.DefaultAllocator, schema)
			defer rb.Release()
			f := rb.Fields()
			var size int64
			flush := func() error {
				if f[0].Len() == 0 {
					return nil
				}
				rec := rb.NewRecord()
				defer rec.Release()
				size = 0
				return fw.Write(rec)
			}
			_, err = forEachDoc(context.Background(), filepath.Join(in.Dir, info.Name), info, func(d *shards.Document) error {
				for i, v := range []string{d.ID, d.Source, d.URL, d.Date, d.Text, d.Lang} {
					f[i].(*array.StringBuilder).Append(v)
				}
				f[6].(*array.Float64Builder).Append(d.LangScore)
				if d.HasQuality {
					f[7].(*array.Float64Builder).Append(d.Quality)
				} else {
					f[7].AppendNull()
				}
				if d.Meta != "" {
					f[8].(*array.StringBuilder).Append(d.Meta)
				} else {
					f[8].AppendNull()
				}
				if size += shards.DocBytes(d); size >= DefaultRowGroupBytes {
					return flush()
				}
				return nil
			})
			if err != nil {
				return err
			}
			if err := flush(); err != nil {
				return err
			}
			return fw.Close()
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// writerProps are the pqarrow writer's properties smelt used for both
// Parquet exports before content-defined pages.
func writerProps(codec compress.Compression, more ...parquet.WriterProperty) *parquet.WriterProperties {
	return parquet.NewWriterProperties(append([]parquet.WriterProperty{
		parquet.WithCompression(codec),
		// Dictionaries only where values repeat; text, ids and token
		// lists would only fall back to plain encoding after the
		// dictionary page fills.
		parquet.WithDictionaryDefault(false),
		parquet.WithDictionaryFor(shards.ColSource, true),
		parquet.WithDictionaryFor(shards.ColLang, true),
		parquet.WithCreatedBy("smelt export"),
		// Pages of 8 MiB instead of Arrow's 1 MiB: zstd then starts
		// far fewer frames. When pqarrow still wrote token files,
		// exporting 10 M GPT-2 tokens took 1.11 instead of 1.43
		// CPU-seconds and 1.5 % fewer bytes.
		parquet.WithDataPageSize(8 << 20),
	}, more...)...)
}

func dirBytes(b *testing.B, dir string) int64 {
	ents, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), ".parquet") {
			n += fi.Size()
		}
	}
	return n
}

// BenchmarkParquetDocs exports about 100 MB of real-text documents (1 MiB
// shards) to Parquet (zstd) from scratch, and again after a takedown of
// 1 % of the documents at random, reusing the first export; for several
// page-group sizes K and zstd levels. Reported: MB of documents per
// second and per CPU-second, the files' size, and the share of the
// documents' bytes (shards.DocBytes) in page groups copied; beside the
// pqarrow writer smelt used before (pqarrowDocs). The default layout is
// k=16-zstd3.
//
//	go test -run '^$' -bench ParquetDocs -benchtime 1x ./export/
func BenchmarkParquetDocs(b *testing.B) {
	parts := benchDocs(b)
	root := b.TempDir()
	orig, reduced := filepath.Join(root, "orig"), filepath.Join(root, "reduced")
	writeCutDocDir(b, orig, parts)
	r := rand.New(rand.NewPCG(28, 2))
	removed := map[string]bool{}
	for _, p := range parts {
		for _, d := range p {
			if r.Float64() < 0.01 {
				removed[d.ID] = true
			}
		}
	}
	writeCutDocDir(b, reduced, without(parts, removed))
	open := func(dir string) []*Input {
		in, err := OpenInput("bench", dir, 0)
		if err != nil {
			b.Fatal(err)
		}
		return []*Input{in}
	}
	var size int64
	for _, p := range parts {
		for _, d := range p {
			size += shards.DocBytes(d)
		}
	}
	b.Run("pqarrow/fresh", func(b *testing.B) {
		b.SetBytes(size)
		cpu := cpuTime()
		out := filepath.Join(root, "pqarrow")
		for i := 0; i < b.N; i++ {
			os.RemoveAll(out)
			pqarrowDocs(b, open(orig)[0], out)
		}
		reportCPU(b, cpu, size)
		b.ReportMetric(float64(dirBytes(b, out))/1e6, "file-MB")
	})
	// The floor: reading and verifying the shards, writing nothing.
	b.Run("read-only", func(b *testing.B) {
		b.SetBytes(size)
		cpu := cpuTime()
		in := open(reduced)[0]
		for i := 0; i < b.N; i++ {
			for _, info := range in.Manifest.Shards {
				if _, err := forEachDoc(context.Background(), filepath.Join(in.Dir, info.Name), info, func(*shards.Document) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
		}
		reportCPU(b, cpu, size)
	})
	defer func(k uint64, l zstd.EncoderLevel) { docPageK, docZstdLevel = k, l }(docPageK, docZstdLevel)
	for _, c := range []struct {
		k     uint64
		level zstd.EncoderLevel
	}{{8, zstd.SpeedDefault}, {16, zstd.SpeedDefault}, {32, zstd.SpeedDefault}, {64, zstd.SpeedDefault}, {256, zstd.SpeedDefault}, {16, zstd.SpeedFastest}} {
		docPageK, docZstdLevel = c.k, c.level
		name := fmt.Sprintf("k=%d-zstd%d", c.k, map[zstd.EncoderLevel]int{zstd.SpeedDefault: 3, zstd.SpeedFastest: 1}[c.level])
		old := filepath.Join(root, name)
		b.Run(name+"/fresh", func(b *testing.B) {
			b.SetBytes(size)
			cpu := cpuTime()
			for i := 0; i < b.N; i++ {
				os.RemoveAll(old)
				if _, err := Run(context.Background(), open(orig), old, Options{Format: FormatParquet}); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu, size)
			b.ReportMetric(float64(dirBytes(b, old))/1e6, "file-MB")
		})
		b.Run(name+"/reuse-1%", func(b *testing.B) {
			if _, err := os.Stat(old); err != nil {
				if _, err := Run(context.Background(), open(orig), old, Options{Format: FormatParquet}); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
			}
			b.SetBytes(size)
			cpu := cpuTime()
			copied, encoded := docBytesCopied.Load(), docBytesEncoded.Load()
			for i := 0; i < b.N; i++ {
				out := filepath.Join(root, "reused")
				os.RemoveAll(out)
				if _, err := Run(context.Background(), open(reduced), out, Options{Format: FormatParquet, Reuse: &Reuse{Dir: old}}); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu, size)
			c, e := docBytesCopied.Load()-copied, docBytesEncoded.Load()-encoded
			b.ReportMetric(100*float64(c)/float64(c+e), "%bytes-copied")
		})
		if c.k != 16 || c.level != zstd.SpeedDefault {
			continue
		}
		// The same takedown told which documents went (Reuse.Removed):
		// derived from the earlier files, the shards unread.
		b.Run(name+"/derive-1%", func(b *testing.B) {
			if _, err := os.Stat(old); err != nil {
				if _, err := Run(context.Background(), open(orig), old, Options{Format: FormatParquet}); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
			}
			b.SetBytes(size)
			cpu := cpuTime()
			for i := 0; i < b.N; i++ {
				out := filepath.Join(root, "derived")
				os.RemoveAll(out)
				if _, err := Run(context.Background(), open(reduced), out, Options{Format: FormatParquet, Reuse: &Reuse{Dir: old, Removed: removed}}); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu, size)
		})
	}
}
