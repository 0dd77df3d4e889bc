package export

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

var (
	benchOnce sync.Once
	benchDir  string
	benchErr  error
)

// benchTokens writes about 64 MiB of token ids (32 M GPT-2 tokens) as
// token shards of the default size: the real corpus's documents, repeated
// (see rotate).
func benchTokens(b *testing.B) string {
	b.Helper()
	c := realCorpus(b)
	benchOnce.Do(func() {
		var docs []shardDoc
		for _, s := range c.sources {
			docs = append(docs, readTokenDocs(b, c.tokens[s])...)
		}
		dir := filepath.Join(tmpRoot, "bench-tokens")
		if benchErr = os.MkdirAll(dir, 0o755); benchErr != nil {
			return
		}
		tok := *mustManifest(b, c.tokens[c.sources[0]]).Tokenizer
		benchErr = writeTokenDir(dir, shards.TokenWriterOptions{Tokenizer: tok}, func(w *shards.TokenWriter) error {
			var n int64
			var ids []uint32
			for rep := 0; n < 32<<20; rep++ {
				for _, d := range docs {
					ids = rotate(ids[:0], d.tokens, rep, tok.EOT)
					if err := w.Write(fmt.Sprintf("%s#%d", d.id, rep), d.source, ids); err != nil {
						return err
					}
					n += int64(len(ids))
				}
			}
			return nil
		})
		benchDir = dir
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchDir
}

// rotate appends src to dst with every id but eot moved rep*7919 places
// along [0, eot): repetition rep of the corpus keeps the real documents'
// lengths and their ids' statistics, but is no byte copy of another, which
// zstd (in the shards and in Parquet) would find and so flatter every
// figure: on the repeated corpus zstd compressed GPT-2 ids at 1,000 MB/s,
// on distinct real text at 240 MB/s.
func rotate(dst, src []uint32, rep int, eot uint32) []uint32 {
	for _, t := range src {
		if t != eot && eot > 0 {
			t = uint32((int(t) + rep*7919) % int(eot))
		}
		dst = append(dst, t)
	}
	return dst
}

// BenchmarkExport measures whole exports (read and verify the shards,
// decode, write, fsync, provenance) in MB of token ids (2 bytes a GPT-2
// token) per second. Run with -cpu 1 for the per-core figure.
func BenchmarkExport(b *testing.B) {
	dir := benchTokens(b)
	in, err := OpenInput("bench", dir, 0)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		opt  Options
	}{
		{"megatron", Options{Format: FormatMegatron}},
		{"nanogpt", Options{Format: FormatNanoGPT}},
		{"llmc", Options{Format: FormatLLMC}},
		{"parquet", Options{Format: FormatParquet}}, // zstd
		{"parquet-snappy", Options{Format: FormatParquet, Compression: "snappy"}},
		{"parquet-none", Options{Format: FormatParquet, Compression: "none"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(2 * in.Manifest.Totals.Tokens)
			cpu := cpuTime()
			for i := 0; i < b.N; i++ {
				out := filepath.Join(b.TempDir(), "out")
				if _, err := Run(context.Background(), []*Input{in}, out, c.opt); err != nil {
					b.Fatal(err)
				}
				if i == b.N-1 {
					var n int64
					ents, _ := os.ReadDir(out)
					for _, e := range ents {
						if fi, err := e.Info(); err == nil {
							n += fi.Size()
						}
					}
					b.ReportMetric(float64(n)/1e6, "out-MB")
				}
				os.RemoveAll(out)
			}
			reportCPU(b, cpu, 2*in.Manifest.Totals.Tokens)
		})
	}
	// The floor: reading and decoding the same shards with smelt's own
	// reader (what the mixture loader does), writing nothing.
	b.Run("read-only", func(b *testing.B) {
		b.SetBytes(2 * in.Manifest.Totals.Tokens)
		cpu := cpuTime()
		for i := 0; i < b.N; i++ {
			for _, s := range in.Manifest.Shards {
				if _, err := shards.ReadTokenShard(filepath.Join(dir, s.Name), &s, 0); err != nil {
					b.Fatal(err)
				}
			}
		}
		reportCPU(b, cpu, 2*in.Manifest.Totals.Tokens)
	})
}

// BenchmarkParquetVsDuckDB sets smelt's whole Parquet token export (read
// and verify the shards, decode, write, fsync) beside DuckDB (C++, the
// reference zstd) only writing the same tokens, already in memory, to
// Parquet with the same codec on one thread, in one run. x-duckdb is
// smelt's MB of token ids per CPU-second over DuckDB's. Needs Node.js and
// npm (the readers' packages).
func BenchmarkParquetVsDuckDB(b *testing.B) {
	read := nodeReaders(b)
	dir := benchTokens(b)
	in, err := OpenInput("bench", dir, 0)
	if err != nil {
		b.Fatal(err)
	}
	// DuckDB's input: the same tokens as an uncompressed Parquet export.
	src := filepath.Join(b.TempDir(), "src")
	if _, err := Run(context.Background(), []*Input{in}, src, Options{Format: FormatParquet, Compression: "none"}); err != nil {
		b.Fatal(err)
	}
	for _, codec := range []string{"zstd", "snappy"} {
		b.Run(codec, func(b *testing.B) {
			mb := float64(2*in.Manifest.Totals.Tokens) / 1e6
			var smelt, duck float64
			var ours, theirs int64
			for i := 0; i < b.N; i++ {
				out := filepath.Join(b.TempDir(), "out")
				cpu := cpuTime()
				p, err := Run(context.Background(), []*Input{in}, out, Options{Format: FormatParquet, Compression: codec})
				if err != nil {
					b.Fatal(err)
				}
				smelt += cpuTime() - cpu
				ours = 0
				for _, f := range p.Files {
					ours += f.Bytes
				}
				os.RemoveAll(out)
				r := read("duckdb-write", filepath.Join(src, "*.parquet"), filepath.Join(b.TempDir(), "duck.parquet"), codec)
				if len(r) != 1 || num(b, r[0], "tokens") != in.Manifest.Totals.Tokens {
					b.Fatalf("DuckDB wrote %v, want %d tokens", r, in.Manifest.Totals.Tokens)
				}
				duck += r[0]["cpu_s"].(float64)
				theirs = num(b, r[0], "bytes")
			}
			n := float64(b.N)
			b.ReportMetric(mb*n/smelt, "smelt-MB/cpu-s")
			b.ReportMetric(mb*n/duck, "duckdb-MB/cpu-s")
			b.ReportMetric(duck/smelt, "x-duckdb")
			b.ReportMetric(float64(ours)/float64(theirs), "size-vs-duckdb")
		})
	}
}

// cpuTime is the process's user and system CPU time so far, in seconds:
// on a shared machine, MB per CPU-second is steadier than wall time, and
// it is the per-core figure whatever else the machine runs.
func cpuTime() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func reportCPU(b *testing.B, start float64, bytesPerOp int64) {
	if d := cpuTime() - start; d > 0 {
		b.ReportMetric(float64(bytesPerOp)*float64(b.N)/d/1e6, "MB/cpu-s")
	}
}
