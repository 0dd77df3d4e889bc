package tokenize

import (
	"context"
	"io"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// repeatReader yields base over and over until n bytes have been read.
type repeatReader struct {
	base []byte
	off  int
	left int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.base[r.off:])
		n += c
		r.off = (r.off + c) % len(r.base)
	}
	r.left -= int64(n)
	return n, nil
}

// peakHeap samples the Go heap in use while f runs.
func peakHeap(f func()) uint64 {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	f()
	close(done)
	wg.Wait()
	return peak.Load()
}

// BenchmarkTrain100MB learns 8,192 merges (vocab 8,192 + 256 + 1 special) on
// 100 MB of text: the clean_text files of the shared data (Shakespeare,
// WikiText-2, Wikipedia, KJV Bible, Jargon File; about 11 MB) repeated and
// streamed, never held whole. Reports seconds, peak Go heap and peak RSS.
//
//	go test ./tokenize -run '^$' -bench Train100MB -benchtime 1x
func BenchmarkTrain100MB(b *testing.B) {
	dir := filepath.Join(sharedDataDir(b), "clean_text")
	var base []byte
	for _, f := range []string{"tinyshakespeare.txt", "wikitext-2_valid.txt", "wikitext-2_test.txt",
		"minbpe_taylorswift_wikipedia.txt", "debian_bible-kjv-text_4.38_kjv.txt.gz", "debian_jargon-text_4.4.7_jargon.txt.gz"} {
		data, err := readMaybeGzip(filepath.Join(dir, f))
		if err != nil {
			b.Fatal(err)
		}
		base = append(base, data...)
		if base[len(base)-1] != '\n' {
			base = append(base, '\n')
		}
	}
	const size = 100_000_000
	for b.Loop() {
		var tr *Trained
		var err error
		start := time.Now()
		peak := peakHeap(func() {
			tr, err = Train(context.Background(), []io.Reader{&repeatReader{base: base, left: size}},
				TrainOptions{VocabSize: 8192 + 256 + 1, Specials: []string{EndOfText}})
		})
		if err != nil {
			b.Fatal(err)
		}
		if len(tr.Merges) != 8192 {
			b.Fatalf("%d merges", len(tr.Merges))
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/train")
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		var ru syscall.Rusage
		if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
			b.ReportMetric(float64(ru.Maxrss)/1024, "maxrss-MiB")
		}
		b.ReportMetric(float64(tr.Words), "distinct-pretokens")
		b.Logf("base corpus %d bytes, %d distinct pre-tokens, GOMAXPROCS %d", len(base), tr.Words, runtime.GOMAXPROCS(0))
	}
}

// BenchmarkTrainCS336 is the cs336 reference run (vocab 500 on corpus.en).
func BenchmarkTrainCS336(b *testing.B) {
	path := filepath.Join(sharedDataDir(b), "tokenizer", "cs336_corpus.en")
	for b.Loop() {
		if _, err := TrainFiles(context.Background(), []string{path}, TrainOptions{VocabSize: 500, Specials: []string{EndOfText}}); err != nil {
			b.Fatal(err)
		}
	}
}
