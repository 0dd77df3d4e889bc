package trainer

import (
	"math"
)

// AdamW is the optimizer state: first and second moments laid out like the
// parameters, and the number of steps taken.
type AdamW struct {
	M, V *Tensors
	// T is the number of steps taken so far.
	T int
	// Beta1, Beta2, Eps are Adam's constants; WeightDecay is the decoupled
	// decay applied to weight matrices and embeddings only.
	Beta1, Beta2, Eps, WeightDecay float32
}

// NewAdamW returns zeroed moments for cfg with nanoGPT's defaults
// (betas 0.9, 0.95, eps 1e-8, weight decay 0.1).
func NewAdamW(cfg Config) *AdamW {
	return &AdamW{M: newTensors(cfg), V: newTensors(cfg), Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1}
}

// Step applies one update with learning rate lr.
func (o *AdamW) Step(be Backend, params, grads *Tensors, lr float32) {
	o.T++
	for i := range params.T {
		wd := float32(0)
		if isMatrix(i) {
			wd = o.WeightDecay
		}
		be.AdamW(params.T[i], grads.T[i], o.M.T[i], o.V.T[i], lr, o.Beta1, o.Beta2, o.Eps, wd, o.T)
	}
}

// Schedule is a linear warmup to MaxLR over Warmup steps, then a cosine
// decay to MinLR at step Decay; after that it stays at MinLR.
type Schedule struct {
	MaxLR, MinLR  float64
	Warmup, Decay int
}

// LR is the learning rate for step (counting from 0).
func (s Schedule) LR(step int) float64 {
	if step < s.Warmup {
		return s.MaxLR * float64(step+1) / float64(s.Warmup)
	}
	if step >= s.Decay || s.Decay <= s.Warmup {
		return s.MinLR
	}
	r := float64(step-s.Warmup) / float64(s.Decay-s.Warmup)
	return s.MinLR + 0.5*(1+math.Cos(math.Pi*r))*(s.MaxLR-s.MinLR)
}

// gradNorm is the global L2 norm of g. It sums fixed 64 Ki chunks in
// float64 and adds the chunk sums in order, so the result does not depend
// on the number of workers.
func gradNorm(g []float32, workers int) float64 {
	const chunk = 1 << 16
	n := (len(g) + chunk - 1) / chunk
	sums := make([]float64, n)
	parallelFor(workers, n, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			var s float64
			for _, v := range g[c*chunk : min((c+1)*chunk, len(g))] {
				s += float64(v) * float64(v)
			}
			sums[c] = s
		}
	})
	var s float64
	for _, v := range sums {
		s += v
	}
	return math.Sqrt(s)
}

// clipGrads scales g so that its norm is at most maxNorm (0: no clipping)
// and returns the norm before clipping.
func clipGrads(g []float32, maxNorm float64, workers int) float64 {
	norm := gradNorm(g, workers)
	if maxNorm > 0 && norm > maxNorm {
		s := float32(maxNorm / (norm + 1e-6))
		parallelFor(workers, len(g), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				g[i] *= s
			}
		})
	}
	return norm
}
