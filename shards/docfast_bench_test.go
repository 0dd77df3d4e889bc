package shards

import (
	"errors"
	"io"
	"os"
	"path/filepath"
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
	}{{"64KiB", 64 << 10}, {"4MiB", 4 << 20}} {
		b.Run(c.name, func(b *testing.B) {
			in := filepath.Join(b.TempDir(), "docs")
			writeDocDir(b, in, docs, c.target)
			b.SetBytes(total)
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
		})
	}
}
