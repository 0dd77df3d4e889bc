package ablate

import (
	"context"
	"math"

	"github.com/smelt-dev/smelt/trainer"
)

// EvalResult is one model's score on one eval set.
type EvalResult struct {
	Set string `json:"set"`
	// Tokens and Bytes scored; LossNats is the mean loss per token,
	// BitsPerByte the total loss in bits over the text's UTF-8 bytes
	// (comparable across tokenizers).
	Tokens      int64   `json:"tokens"`
	Bytes       int64   `json:"bytes"`
	LossNats    float64 `json:"loss"`
	BitsPerByte float64 `json:"bits_per_byte"`
}

// scoreCheckpoint scores the checkpoint in dir on every set: each document
// is encoded with the checkpoint's tokenizer and followed by its
// end-of-text id, the documents are concatenated in order, and the stream
// is cut into non-overlapping windows of the model's context (stride =
// context), every token but the stream's first predicted once. It runs on
// one thread, so the result depends on nothing but the data and weights.
func scoreCheckpoint(ctx context.Context, dir string, sets []EvalSet) ([]EvalResult, error) {
	m, ck, err := trainer.LoadModel(dir, trainer.NewCPU(1))
	if err != nil {
		return nil, err
	}
	tok, err := ck.LoadTokenizer()
	if err != nil {
		return nil, err
	}
	T := m.Config.Context
	var out []EvalResult
	for _, s := range sets {
		var ids []uint32
		var nbytes int64
		if err := eachEvalDoc(s, func(_, text string) error {
			ids = tok.AppendEncodeOrdinary(ids, text)
			ids = append(ids, ck.EOT)
			nbytes += int64(len(text))
			return nil
		}); err != nil {
			return nil, err
		}
		var sum float64
		var n int64
		for start := 0; start+1 < len(ids); start += T {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			end := min(start+T+1, len(ids))
			w := end - start - 1
			loss, err := m.Forward(ids[start:end-1], ids[start+1:end], 1, w)
			if err != nil {
				return nil, err
			}
			sum += float64(loss) * float64(w)
			n += int64(w)
		}
		r := EvalResult{Set: s.Name, Tokens: n, Bytes: nbytes, }
		if n > 0 && nbytes > 0 {
			r.LossNats = sum / float64(n)
			r.BitsPerByte = sum / math.Ln2 / float64(nbytes)
		}
		out = append(out, r)
	}
	return out, nil
}
