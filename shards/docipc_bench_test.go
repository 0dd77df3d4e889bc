package shards

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/klauspost/compress/zstd"
)

// benchDocCorpus cuts every clean_text file of the shared data into
// documents of 2-16 KiB at paragraph boundaries, with the other columns
// filled in as ingest fills them, and repeats the lot (new ids and URLs)
// until it holds at least want bytes. A copy is about 10 MB, more than a
// record batch, so no batch sees its own text twice.
func benchDocCorpus(b *testing.B, want int64) []*Document {
	dir := filepath.Join("..", "..", "shared", "data", "clean_text")
	if _, err := os.Stat(dir); err != nil {
		b.Skipf("shared test data not found at %s: %v", dir, err)
	}
	var texts []string
	for _, name := range []string{"tinyshakespeare.txt", "debian_bible-kjv-text_4.38_kjv.txt.gz", "wikitext-2_valid.txt",
		"wikitext-2_test.txt", "minbpe_taylorswift_wikipedia.txt", "debian_jargon-text_4.4.7_jargon.txt.gz"} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		r := bufio.NewReader(f)
		if strings.HasSuffix(name, ".gz") {
			gz, err := gzip.NewReader(f)
			if err != nil {
				b.Fatal(err)
			}
			r = bufio.NewReader(gz)
		}
		var cur strings.Builder
		for {
			line, err := r.ReadString('\n')
			cur.WriteString(line)
			if (cur.Len() > 2048+(len(texts)%4)*2048 && strings.TrimSpace(line) == "") || cur.Len() > 16384 || (err != nil && cur.Len() > 0) {
				texts = append(texts, cur.String())
				cur.Reset()
			}
			if err != nil {
				break
			}
		}
		f.Close()
	}
	var docs []*Document
	var total int64
	for c := 0; total < want; c++ {
		for i, text := range texts {
			n := len(docs)
			d := &Document{
				ID:        fmt.Sprintf("%016x", uint64(n)*0x9E3779B97F4A7C15),
				Source:    "clean_text",
				URL:       fmt.Sprintf("https://site%d.example.org/copy%d/page/%d.html", i%97, c, i),
				Date:      fmt.Sprintf("2024-%02d-%02dT%02d:00:00Z", 1+n%12, 1+n%28, n%24),
				Lang:      "en",
				LangScore: 0.5 + float64(n%500)/1000,
				Text:      text,
				Meta:      fmt.Sprintf(`{"warc_record_id":"<urn:uuid:%08x-0000-4000-8000-%012x>","offset":%d}`, n, n*7, n*4096),
			}
			if n%5 != 0 {
				d.Quality, d.HasQuality = float64(n%1000)/1000, true
			}
			docs = append(docs, d)
			total += DocBytes(d)
		}
	}
	return docs
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDocWrite writes about 64 MB of real documents as document
// shards (DocWriter, default batch size; shards of the default 64 MiB and
// of 1 MiB, the size the pipelines' benchmark recipe uses) with Arrow Go's
// IPC writer and with the hand-written one at three zstd levels (hand:
// docZstd's level 1; level3: Arrow Go's; level7: klauspost's
// SpeedBetterCompression). Besides
// ns/op and MB/s it reports the CPU time per MB of documents (all
// threads: Arrow Go's encoder compresses on goroutines) and the files'
// size as a fraction of the documents' bytes.
//
//	go test ./shards/ -run '^$' -bench DocWrite -benchtime 3x
func BenchmarkDocWrite(b *testing.B) {
	docs := benchDocCorpus(b, 64<<20)
	var data int64
	for _, d := range docs {
		data += DocBytes(d)
	}
	hand := func(level zstd.EncoderLevel) func(string, *arrow.Schema) (*IPCFile, error) {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
		if err != nil {
			b.Fatal(err)
		}
		return func(path string, sc *arrow.Schema) (*IPCFile, error) {
			fields, ok := handFields(sc)
			if !ok {
				return nil, fmt.Errorf("schema not covered")
			}
			return createHandIPCFile(path, sc, fields, enc)
		}
	}
	for _, c := range []struct {
		name   string
		target int64
		open   func(string, *arrow.Schema) (*IPCFile, error)
	}{
		{"shard=64MiB/arrowgo", 64 << 20, createArrowGoIPCFile},
		{"shard=64MiB/hand", 64 << 20, CreateIPCFile},
		{"shard=64MiB/hand-oneframe", 64 << 20, oneFrame(CreateIPCFile)},
		{"shard=64MiB/hand-level3", 64 << 20, hand(zstd.SpeedDefault)},
		{"shard=64MiB/hand-level7", 64 << 20, hand(zstd.SpeedBetterCompression)},
		{"shard=1MiB/arrowgo", 1 << 20, createArrowGoIPCFile},
		{"shard=1MiB/hand", 1 << 20, CreateIPCFile},
		{"shard=1MiB/hand-oneframe", 1 << 20, oneFrame(CreateIPCFile)},
		{"shard=1MiB/hand-level3", 1 << 20, hand(zstd.SpeedDefault)},
	} {
		b.Run(c.name, func(b *testing.B) {
			defer func() { frameText = true }()
			b.SetBytes(data)
			b.ReportAllocs()
			var files int64
			runtime.GC()
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				dir := b.TempDir()
				w := NewDocWriter(dir, DocWriterOptions{TargetBytes: c.target})
				w.format.(*arrowFormat).open = c.open
				for _, d := range docs {
					if err := w.Write(d); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				files = 0
				for _, s := range w.Shards() {
					files += s.Bytes
				}
			}
			b.StopTimer()
			cpu := cpuTime() - cpu0
			b.ReportMetric(cpu.Seconds()*1000/float64(b.N)/(float64(data)/1e6), "cpu-ms/MB")
			b.ReportMetric(float64(files)/float64(data), "file/data")
		})
	}
}

// oneFrame is open writing each text buffer as one zstd frame, as before
// the text was framed (docframes.go): the framing's cost, in the same run.
func oneFrame(open func(string, *arrow.Schema) (*IPCFile, error)) func(string, *arrow.Schema) (*IPCFile, error) {
	return func(path string, sc *arrow.Schema) (*IPCFile, error) {
		frameText = false
		return open(path, sc)
	}
}
