package trainer

import (
	"math"
	"math/rand/v2"
)

// The parameter tensors, in the order they lie in the flat buffer (llm.c's
// order). Matrices are stored row-major as (out, in), like PyTorch's
// nn.Linear weight.
const (
	pWTE      = iota // (V, C) token embedding, tied with the output head
	pWPE             // (T, C) position embedding
	pLN1W            // (L, C)
	pLN1B            // (L, C)
	pQKVW            // (L, 3C, C)
	pQKVB            // (L, 3C)
	pAttProjW        // (L, C, C)
	pAttProjB        // (L, C)
	pLN2W            // (L, C)
	pLN2B            // (L, C)
	pFCW             // (L, 4C, C)
	pFCB             // (L, 4C)
	pFCProjW         // (L, C, 4C)
	pFCProjB         // (L, C)
	pLNFW            // (C)
	pLNFB            // (C)
	numParamTensors
)

// ParamNames are the names of the parameter tensors in buffer order, as used
// by checkpoints and the PyTorch parity vectors.
var ParamNames = [numParamTensors]string{
	"wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
	"ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb",
}

func (c Config) paramSizes() [numParamTensors]int {
	V, C, T, L := c.Vocab, c.Width, c.Context, c.Layers
	return [numParamTensors]int{
		V * C, T * C, L * C, L * C, L * 3 * C * C, L * 3 * C, L * C * C, L * C,
		L * C, L * C, L * 4 * C * C, L * 4 * C, L * C * 4 * C, L * C, C, C,
	}
}

// isMatrix reports whether tensor i is a weight matrix (embeddings included):
// AdamW's weight decay applies to these only, as in nanoGPT.
func isMatrix(i int) bool {
	switch i {
	case pWTE, pWPE, pQKVW, pAttProjW, pFCW, pFCProjW:
		return true
	}
	return false
}

// Tensors is a set of named views into one flat float32 buffer laid out by a
// Config: parameters, their gradients and the AdamW moments all use it.
type Tensors struct {
	Flat []float32
	T    [numParamTensors][]float32
}

func newTensors(c Config) *Tensors {
	sizes := c.paramSizes()
	n := 0
	for _, s := range sizes {
		n += s
	}
	t := &Tensors{Flat: make([]float32, n)}
	off := 0
	for i, s := range sizes {
		t.T[i] = t.Flat[off : off+s : off+s]
		off += s
	}
	return t
}

// Tensor returns the view called name (one of ParamNames), or nil.
func (t *Tensors) Tensor(name string) []float32 {
	for i, n := range ParamNames {
		if n == name {
			return t.T[i]
		}
	}
	return nil
}

// initParams fills p as GPT-2 does: normal(0, 0.02) weights, the residual
// projections scaled by 1/sqrt(2*layers), zero biases, unit LayerNorm gains.
func initParams(c Config, p *Tensors, rng *rand.Rand) {
	std := 0.02
	projStd := 0.02 / math.Sqrt(2*float64(c.Layers))
	for i, t := range p.T {
		switch i {
		case pLN1W, pLN2W, pLNFW:
			for j := range t {
				t[j] = 1
			}
		case pWTE, pWPE, pQKVW, pFCW:
			for j := range t {
				t[j] = float32(rng.NormFloat64() * std)
			}
		case pAttProjW, pFCProjW:
			for j := range t {
				t[j] = float32(rng.NormFloat64() * projStd)
			}
		default:
			clear(t)
		}
	}
}
