package shards

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// BenchmarkDocRead reads real text from document shards the way the
// tokenize stage does (the fast reader, batch blocks recycled): each file
// read, its sha256 checked and its zstd buffers decoded. Shards of 64 KiB
// (as BenchmarkTokenize writes them) and of 4 MiB.
func BenchmarkDocRead(b *testing.B) {
	data := filepath.Join("..", "..", "shared", "data", "clean_text")
	if _, err := os.Stat(data); err != nil {
		b.Skipf("shared test data not found at %s: %v", data, err)
	}
	docs := realDocs(b, data, 3<<20)
	var total int64
	for _, d := range docs {
		total += int64(len(d.Text))
	}
	for _, c := range []struct {
		name   string
		target int64
		one    bool
	}{{"64KiB", 64 << 10, false}, {"4MiB", 4 << 20, false}, {"64KiB-oneframe", 64 << 10, true}, {"4MiB-oneframe", 4 << 20, true}} {
		b.Run(c.name, func(b *testing.B) {
			in := filepath.Join(b.TempDir(), "docs")
			// -oneframe: the text as one zstd frame per batch, as
			// written before the framing (docframes.go).
			frameText = !c.one
			writeDocDir(b, in, docs, c.target)
			frameText = true
			b.SetBytes(total)
			runtime.GC()
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r, err := OpenDocDirs(in)
				if err != nil {
					b.Fatal(err)
				}
				r.recycle()
				for {
					d, err := r.Next()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					r.Done(d)
				}
				r.Close()
			}
			b.StopTimer()
			cpu := cpuTime() - cpu0
			b.ReportMetric(float64(total)*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
		})
	}
}
