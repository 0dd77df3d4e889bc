package fasttext_test

import (
	"context"
	"syscall"
	"testing"

	"github.com/smelt-dev/smelt/fasttext"
)

// BenchmarkLID176 is lid.176.ftz's language id of real texts (the
// comparison corpus: shared crawl documents, extracted pages and their
// paragraphs), top-1, on one goroutine: the bar is 20 MB/s per core.
func BenchmarkLID176(b *testing.B) {
	r := ref(b)
	m, err := fasttext.Load(r.lidPath())
	if err != nil {
		b.Fatal(err)
	}
	texts := realTexts(b, 6000)
	var n int64
	for _, s := range texts {
		n += int64(len(s))
	}
	b.SetBytes(n)
	b.ResetTimer()
	cpu := cpuSeconds()
	for range b.N {
		for _, s := range texts {
			if _, err := m.Predict(s, 1, 0); err != nil {
				b.Fatal(err)
			}
		}
	}
	// Wall-clock MB/s suffers from the other jobs on a shared machine; the
	// process's CPU time does not.
	b.ReportMetric(float64(n)*float64(b.N)/1e6/(cpuSeconds()-cpu), "MB/cpu-s")
}

// cpuSeconds is the process's user and system CPU time (getrusage).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkTrain trains the books-vs-pages quality classifier (the
// defaults: dim 16, word bigrams, 5 epochs).
func BenchmarkTrain(b *testing.B) {
	var train []fasttext.Example
	var n int64
	for _, s := range qualitySources(b, false) {
		for _, c := range s.chunks {
			train = append(train, fasttext.Example{Labels: []string{label(s.positive)}, Text: c})
			n += int64(len(c))
		}
	}
	b.SetBytes(n)
	b.ResetTimer()
	for range b.N {
		if _, err := fasttext.Train(context.Background(), train, fasttext.TrainOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
