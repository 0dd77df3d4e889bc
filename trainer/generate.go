package trainer

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// LoadModel reads the checkpoint at path (a file or a run directory) and
// returns its model, sized for generation (one sequence of up to the
// model's context), with the checkpoint's metadata.
func LoadModel(path string, be Backend) (*Model, *Checkpoint, error) {
	path = ResolveCheckpoint(path)
	ck, err := LoadCheckpoint(path)
	if err != nil {
		return nil, nil, err
	}
	m, err := NewModel(ck.Config, be, 0, 1, ck.Config.Context)
	if err != nil {
		return nil, nil, err
	}
	copy(m.Params.Flat, ck.Params)
	ck.M, ck.V = nil, nil
	return m, ck, nil
}

// SampleOptions control Generate.
type SampleOptions struct {
	// Tokens is how many tokens to generate.
	Tokens int
	// Temperature divides the logits; 0 picks the most likely token.
	Temperature float64
	// TopK keeps only the K most likely tokens (0: all).
	TopK int
	// Seed seeds the sampler.
	Seed uint64
	// Stop, when non-nil, ends generation after this token is produced.
	Stop *uint32
}

// Generate continues prompt by sampling from m one token at a time; the
// model sees the last Context tokens. emit, when non-nil, receives each
// token as it is drawn. It returns the generated tokens.
func Generate(ctx context.Context, m *Model, prompt []uint32, opt SampleOptions, emit func(uint32) error) ([]uint32, error) {
	if len(prompt) == 0 {
		return nil, fmt.Errorf("trainer: generate needs at least one prompt token")
	}
	V := m.Config.Vocab
	for i, t := range prompt {
		if int(t) >= V {
			return nil, fmt.Errorf("trainer: prompt token %d at position %d is outside the vocabulary of %d", t, i, V)
		}
	}
	if opt.Temperature < 0 || opt.TopK < 0 {
		return nil, fmt.Errorf("trainer: temperature %g and top-k %d must not be negative", opt.Temperature, opt.TopK)
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x9e4))
	seq := append([]uint32(nil), prompt...)
	var out []uint32
	probs := make([]float64, V)
	idx := make([]int, V)
	for range opt.Tokens {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		window := seq[max(0, len(seq)-min(m.maxT, m.Config.Context)):]
		if _, err := m.Forward(window, nil, 1, len(window)); err != nil {
			return out, err
		}
		logits := m.Logits()[(len(window)-1)*V : len(window)*V]
		tok := sample(logits, probs, idx, opt, rng)
		seq = append(seq, tok)
		out = append(out, tok)
		if emit != nil {
			if err := emit(tok); err != nil {
				return out, err
			}
		}
		if opt.Stop != nil && tok == *opt.Stop {
			break
		}
	}
	return out, nil
}

func sample(logits []float32, probs []float64, idx []int, opt SampleOptions, rng *rand.Rand) uint32 {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	if opt.Temperature == 0 || opt.TopK == 1 {
		return uint32(best)
	}
	cand := idx[:len(logits)]
	for i := range cand {
		cand[i] = i
	}
	if opt.TopK > 0 && opt.TopK < len(cand) {
		sort.SliceStable(cand, func(a, b int) bool { return logits[cand[a]] > logits[cand[b]] })
		cand = cand[:opt.TopK]
	}
	mx := float64(logits[best])
	var s float64
	for j, i := range cand {
		p := math.Exp((float64(logits[i]) - mx) / opt.Temperature)
		probs[j] = p
		s += p
	}
	u := rng.Float64() * s
	for j, i := range cand {
		u -= probs[j]
		if u <= 0 {
			return uint32(i)
		}
	}
	return uint32(cand[len(cand)-1])
}
