// Package trainer trains a GPT-2 style language model on CPU from token
// batches, llm.c style: parameters, gradients and AdamW moments are flat
// float32 buffers with named views, every op has a hand-written forward and
// backward, and the math runs behind a small Backend interface so that a
// faster kernel (OpenBLAS through cgo, a GPU later) can be swapped in without
// touching the model or the loop.
//
// The model is hand-written rather than built on a Go ML framework because
// the one measured on this machine (GoMLX's pure-Go backend) trained a
// 0.5M-parameter GPT at 350 tokens/s and 1.9 GB RSS, about ten times slower
// than plain Go matrix code.
package trainer

import (
	"bytes"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"
)

// Config is the shape of a GPT-2 model.
type Config struct {
	// Layers is the number of transformer blocks.
	Layers int `yaml:"layers" json:"layers"`
	// Heads is the number of attention heads; it must divide Width.
	Heads int `yaml:"heads" json:"heads"`
	// Width is the embedding (residual stream) width.
	Width int `yaml:"width" json:"width"`
	// Context is the longest sequence the model sees (learned positions).
	Context int `yaml:"context" json:"context"`
	// Vocab is the vocabulary size, taken from the token shards' manifest.
	Vocab int `yaml:"vocab" json:"vocab"`
}

// Presets are the named configurations accepted by --config. Their Vocab is
// zero: it comes from the data.
var Presets = map[string]Config{
	"tiny":      {Layers: 2, Heads: 2, Width: 64, Context: 64},
	"small":     {Layers: 4, Heads: 4, Width: 256, Context: 256},
	"gpt2-124m": {Layers: 12, Heads: 12, Width: 768, Context: 1024},
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case c.Layers <= 0:
		return fmt.Errorf("trainer: config layers must be > 0, got %d", c.Layers)
	case c.Heads <= 0:
		return fmt.Errorf("trainer: config heads must be > 0, got %d", c.Heads)
	case c.Width <= 0 || c.Width%c.Heads != 0:
		return fmt.Errorf("trainer: config width %d must be > 0 and divisible by heads %d", c.Width, c.Heads)
	case c.Context <= 0:
		return fmt.Errorf("trainer: config context must be > 0, got %d", c.Context)
	case c.Vocab <= 0:
		return fmt.Errorf("trainer: config vocab must be > 0, got %d", c.Vocab)
	}
	return nil
}

// ResolveConfig returns the preset called name, or the YAML file at name
// (keys layers, heads, width, context and optionally vocab; unknown keys are
// an error). vocab, when non-zero, overrides the vocabulary; a file whose
// vocab differs from a non-zero vocab is an error.
func ResolveConfig(name string, vocab int) (Config, error) {
	c, err := LoadConfig(name)
	if err != nil {
		return Config{}, err
	}
	if vocab > 0 {
		if c.Vocab != 0 && c.Vocab != vocab {
			return Config{}, fmt.Errorf("trainer: config %s has vocab %d but the data has %d", name, c.Vocab, vocab)
		}
		c.Vocab = vocab
	}
	return c, c.Validate()
}

// LoadConfig returns the preset called name or the YAML file at name as it
// is (Vocab may be zero). Unknown keys and a shape other than the
// vocabulary that fails Validate are errors.
func LoadConfig(name string) (Config, error) {
	c, ok := Presets[name]
	if !ok {
		data, err := os.ReadFile(name)
		if err != nil {
			return Config{}, fmt.Errorf("trainer: config %q is neither a preset (tiny, small, gpt2-124m) nor a readable file: %w", name, err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			return Config{}, fmt.Errorf("trainer: config %s: %w", name, err)
		}
	}
	v := c
	if v.Vocab == 0 {
		v.Vocab = 1
	}
	if err := v.Validate(); err != nil {
		return Config{}, fmt.Errorf("trainer: config %s: %w", name, err)
	}
	return c, nil
}

// NumParams is the number of float32 parameters of a model with this config.
func (c Config) NumParams() int {
	n := 0
	for _, s := range c.paramSizes() {
		n += s
	}
	return n
}

// FlopsPerToken is the training (forward + backward) floating point work
// per token at sequence length seqLen, counted as in nanoGPT and PaLM: 6 per
// matrix parameter (the tied head included, embeddings' lookups not) plus
// 12*L*T*C for the attention scores and the weighted values over the full
// square, as nanoGPT counts them (the kernels skip most of the masked half,
// which MFU does not credit).
func (c Config) FlopsPerToken(seqLen int) float64 {
	C, L, T, V := float64(c.Width), float64(c.Layers), float64(seqLen), float64(c.Vocab)
	matrix := L*12*C*C + V*C // qkv 3C^2 + proj C^2 + fc 4C^2 + fcproj 4C^2, plus the tied head
	return 6*matrix + 12*L*T*C
}

// ActivationBytes estimates the memory of a Model's activations and
// activation gradients for batches of B sequences of T tokens (parameters,
// gradients and AdamW moments add 16 bytes per parameter).
func (c Config) ActivationBytes(B, T int) int64 {
	BT, C, L := int64(B*T), int64(c.Width), int64(c.Layers)
	att := int64(B) * int64(c.Heads) * int64(T) * int64(T)
	perLayer := BT*(16*C+2) + att // ln1, qkv, atty, res2, ln2, fch, fchGelu, res3; LayerNorm stats; softmax
	scratch := BT*(12*C) + att    // one layer's gradients
	return 4 * (L*perLayer + scratch + BT*(3*C+int64(c.Vocab)+3))
}
