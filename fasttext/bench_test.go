package fasttext_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
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

// BenchmarkLID176Reference is the same work in the reference fastText
// (fastText's C++ in WebAssembly under Node.js): its own CPU time for the
// prediction loop, without start-up. Run it beside BenchmarkLID176 for the
// ratio.
func BenchmarkLID176Reference(b *testing.B) {
	r := ref(b)
	texts := realTexts(b, 6000)
	var in bytes.Buffer
	for _, s := range texts {
		j, _ := json.Marshal(s)
		in.Write(j)
		in.WriteByte('\n')
	}
	b.ResetTimer()
	cmd := exec.Command(r.node, filepath.Join(r.dir, "ref.mjs"), "bench", r.lidPath(), strconv.Itoa(b.N))
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		b.Fatal(err)
	}
	var res struct {
		Bytes float64 `json:"bytes"`
		CPU   float64 `json:"cpu_s"`
		Wall  float64 `json:"wall_s"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		b.Fatalf("%s: %v", out, err)
	}
	b.ReportMetric(res.Bytes/1e6/res.CPU, "MB/cpu-s")
	b.ReportMetric(res.Bytes/1e6/res.Wall, "MB/s-wall")
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
