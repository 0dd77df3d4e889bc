package trainer

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
)

// benchCfg is the benchmark configuration.
var benchCfg = Config{Layers: 4, Heads: 4, Width: 256, Context: 256, Vocab: 8192}

const benchB = 8

func benchTrainStep(b *testing.B, be *CPU) float64 {
	o := DefaultOptions()
	o.BatchSize, o.SeqLen, o.Steps, o.ValEvery = benchB, benchCfg.Context, 1<<30, 0
	o.PeakFLOPS = MeasurePeak(be, 1024)
	tr, err := New(benchCfg, be, o, DataInfo{Vocab: benchCfg.Vocab}, NewSyntheticBatcher(benchCfg.Vocab, 16, 1), nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tr.TrainStep(); err != nil { // warm-up
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := tr.TrainStep(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	tps := float64(b.N*benchB*benchCfg.Context) / b.Elapsed().Seconds()
	b.ReportMetric(tps, "tokens/s")
	b.ReportMetric(100*tps*benchCfg.FlopsPerToken(benchCfg.Context)/o.PeakFLOPS, "%MFU")
	b.ReportMetric(o.PeakFLOPS/1e9, "peak-GFLOP/s")
	b.ReportMetric(benchCfg.FlopsPerToken(benchCfg.Context)/1e6, "MFLOP/token")
	return tps
}

// BenchmarkTrainStep is one optimizer step of the configuration (4
// layers, 4 heads, width 256, context 256, vocabulary 8192, batch 8) on the
// default kernel (OpenBLAS with -tags openblas) and on the pure-Go kernel.
func BenchmarkTrainStep(b *testing.B) {
	b.Run("kernel=default", func(b *testing.B) { benchTrainStep(b, NewCPU(0)) })
	if HasOpenBLAS {
		b.Run("kernel=purego", func(b *testing.B) { benchTrainStep(b, NewPureGo(0)) })
	}
}

// BenchmarkVsPyTorch runs smelt's step and bench/torch_bench.py (the same
// model and batch in PyTorch, best of 1 and 2 threads) in the same run and
// reports smelt's tokens/s over PyTorch's best as a ratio. It is skipped
// without a python3 that imports torch.
func BenchmarkVsPyTorch(b *testing.B) {
	py := torchPython()
	if py == "" {
		b.Skip("no python3 with torch (apt-get install python3-torch)")
	}
	smelt := benchTrainStep(b, NewCPU(0))
	torchOnce.Do(func() {
		out, err := exec.Command(py, filepath.Join("bench", "torch_bench.py"), "--steps", "4", "--repeats", "2").CombinedOutput()
		if err != nil {
			torchErr = fmt.Errorf("torch_bench.py: %v\n%s", err, out)
			return
		}
		m := regexp.MustCompile(`best_tokens_per_s=([0-9.]+)`).FindSubmatch(out)
		if m == nil {
			torchErr = fmt.Errorf("torch_bench.py printed no best_tokens_per_s:\n%s", out)
			return
		}
		torchTPS, _ = strconv.ParseFloat(string(m[1]), 64)
		os.Stderr.Write(out)
	})
	if torchErr != nil {
		b.Fatal(torchErr)
	}
	b.ReportMetric(torchTPS, "torch-tokens/s")
	b.ReportMetric(smelt/torchTPS, "smelt/torch")
}

var (
	torchOnce sync.Once
	torchTPS  float64
	torchErr  error
)

// BenchmarkSgemm1024 times a 1024^3 product on each kernel of the build
// (gonum; archsimd with GOEXPERIMENT=simd; OpenBLAS with -tags openblas).
func BenchmarkSgemm1024(b *testing.B) {
	kernels := map[string]*CPU{"gonum": {k: goKernel{}, workers: 2}, "purego-best": NewPureGo(0), "default": NewCPU(0)}
	for _, name := range []string{"gonum", "purego-best", "default"} {
		be := kernels[name]
		b.Run("kernel="+name, func(b *testing.B) {
			const n = 1024
			a, x, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
			for i := range a {
				a[i], x[i] = float32(i%7)*0.1, float32(i%5)*0.1
			}
			b.ResetTimer()
			for range b.N {
				be.Sgemm(n, n, n, a, x, c)
			}
			b.ReportMetric(2*n*n*n*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkOps times each non-matmul op at the benchmark configuration's
// shapes (B=8, T=256, C=256, V=8192), to show where the time outside the
// matrix kernel goes.
func BenchmarkOps(b *testing.B) {
	be := NewCPU(0)
	B, T, C, V, NH := benchB, benchCfg.Context, benchCfg.Width, benchCfg.Vocab, benchCfg.Heads
	BT := B * T
	f := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(i%97)*0.01 - 0.5
		}
		return v
	}
	targets := make([]uint32, BT)
	for i := range targets {
		targets[i] = uint32(i * 31 % V)
	}
	logits, probs, losses := f(BT*V), f(BT*V), f(BT)
	x4, y4, d4 := f(BT*4*C), f(BT*4*C), f(BT*4*C)
	x, y, mean, rstd, w, bias := f(BT*C), f(BT*C), f(BT), f(BT), f(C), f(C)
	qkv, att, datt, dqkv := f(BT*3*C), f(B*NH*T*T), f(B*NH*T*T), f(BT*3*C)
	p, g, m, v := f(benchCfg.NumParams()), f(benchCfg.NumParams()), f(benchCfg.NumParams()), f(benchCfg.NumParams())
	for i := range v {
		v[i] = 1
	}
	ops := []struct {
		name string
		fn   func()
	}{
		{"crossentropy_fwd", func() { be.SoftmaxCrossEntropyForward(losses, probs, logits, targets, BT, V) }},
		{"crossentropy_bwd", func() { be.SoftmaxCrossEntropyBackward(probs, probs, targets, 1e-3, BT, V) }},
		{"gelu_fwd", func() { be.GeluForward(y4, x4) }},
		{"gelu_bwd", func() { be.GeluBackward(d4, x4, y4) }},
		{"layernorm_fwd", func() { be.LayerNormForward(y, mean, rstd, x, w, bias, BT, C) }},
		{"layernorm_bwd", func() { be.LayerNormBackward(y, w, bias, x, x, w, mean, rstd, BT, C) }},
		{"attention_fwd", func() { be.AttentionForward(y, att, qkv, B, T, C, NH) }},
		{"attention_bwd", func() { be.AttentionBackward(dqkv, datt, y, qkv, att, B, T, C, NH) }},
		{"adamw", func() { be.AdamW(p, g, m, v, 1e-4, 0.9, 0.95, 1e-8, 0.1, 10) }},
	}
	for _, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			for range b.N {
				op.fn()
			}
		})
	}
}
