package trainer

import (
	"runtime"
	"sync"
)

// Backend is the math the model runs on. Every op comes as a forward and a
// backward; shapes are explicit; the output comes first. Backward functions
// accumulate (+=) into parameter and input gradients, as in llm.c, except
// SoftmaxCrossEntropyBackward, which overwrites dlogits (it may alias probs).
// All buffers are flat row-major float32.
type Backend interface {
	// Name says which kernel runs the matrix products, for the logs.
	Name() string

	// EncoderForward: out(B,T,C) = wte[inp] + wpe[t].
	EncoderForward(out []float32, inp []uint32, wte, wpe []float32, B, T, C int)
	EncoderBackward(dwte, dwpe, dout []float32, inp []uint32, B, T, C int)

	// ResidualForward: out = a + b, elementwise.
	ResidualForward(out, a, b []float32)

	// MatmulForward: out(BT,OC) = inp(BT,C) · weight(OC,C)ᵀ + bias(OC); bias may be nil.
	MatmulForward(out, inp, weight, bias []float32, BT, C, OC int)
	// MatmulBackward accumulates dinp(BT,C), dweight(OC,C) and dbias(OC) (may be nil).
	MatmulBackward(dinp, dweight, dbias, dout, inp, weight []float32, BT, C, OC int)

	// LayerNormForward normalises each of BT rows of width C (eps 1e-5) and
	// keeps the row mean and 1/std for the backward pass.
	LayerNormForward(out, mean, rstd, inp, weight, bias []float32, BT, C int)
	LayerNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd []float32, BT, C int)

	// AttentionForward: causal multi-head attention over qkv(B,T,3C) laid
	// out as [q | k | v]; out(B,T,C); att(B,NH,T,T) keeps the softmax.
	AttentionForward(out, att, qkv []float32, B, T, C, NH int)
	// AttentionBackward accumulates dqkv; datt(B,NH,T,T) is scratch.
	AttentionBackward(dqkv, datt, dout, qkv, att []float32, B, T, C, NH int)

	// GeluForward is GPT-2's tanh approximation of GELU.
	GeluForward(out, inp []float32)
	GeluBackward(dinp, inp, dout []float32)

	// SoftmaxCrossEntropyForward turns logits(BT,V) into probs (which may
	// alias logits) and losses(BT) = -log probs[target].
	SoftmaxCrossEntropyForward(losses, probs, logits []float32, targets []uint32, BT, V int)
	// SoftmaxCrossEntropyBackward writes dlogits = (probs - onehot) * dloss.
	SoftmaxCrossEntropyBackward(dlogits, probs []float32, targets []uint32, dloss float32, BT, V int)

	// AdamW updates params in place with bias-corrected moments (step t
	// counts from 1) and decoupled weight decay.
	AdamW(params, grads, m, v []float32, lr, beta1, beta2, eps, weightDecay float32, t int)
}

// gemmKernel is the one primitive the CPU backend takes from outside:
// row-major single precision C = alpha·op(A)·op(B) + beta·C.
type gemmKernel interface {
	name() string
	// sgemm may be called from several goroutines at once.
	sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
}

// CPU is the Backend for the host processor: the matrix products go to a
// gemm kernel (pure Go, or OpenBLAS with the openblas build tag) and the
// other ops are Go loops spread over Workers goroutines. For a fixed worker
// count every op is deterministic: work is split by rows and reductions over
// rows are split by columns, so no sum depends on goroutine timing.
type CPU struct {
	k       gemmKernel
	workers int
}

// NewCPU returns the CPU backend with the fastest kernel compiled in, using
// workers goroutines (0: GOMAXPROCS).
func NewCPU(workers int) *CPU {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return &CPU{k: defaultKernel(workers), workers: workers}
}

// NewPureGo returns the CPU backend with the fastest pure-Go gemm kernel of
// this build (gonum's; archsimd's with GOEXPERIMENT=simd on amd64), whatever
// the openblas tag, for comparisons and tests.
func NewPureGo(workers int) *CPU {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return &CPU{k: fastGoKernel(workers), workers: workers}
}

// Name implements Backend.
func (b *CPU) Name() string { return b.k.name() }

// Workers is the number of goroutines the backend uses.
func (b *CPU) Workers() int { return b.workers }

// Sgemm exposes the kernel's product for peak measurements:
// c(m,n) = a(m,k)·b(k,n), row-major, no transposes.
func (b *CPU) Sgemm(m, n, k int, a, bm, c []float32) {
	b.k.sgemm(false, false, m, n, k, 1, a, k, bm, n, 0, c, n)
}

// parallelFor splits [0,n) into at most workers contiguous chunks and runs fn
// on each in its own goroutine.
func parallelFor(workers, n int, fn func(lo, hi int)) {
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}
