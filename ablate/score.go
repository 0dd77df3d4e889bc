package ablate

import (
	"context"

	"github.com/smelt-dev/smelt/trainer"
)

// EvalSet is a held-out evaluation set, as trainer.Evaluate reads it:
// document-shard directories, text files (each file one document: a book
// is one text) or JSONL files (one document per line, its "text").
type EvalSet = trainer.EvalSet

// EvalResult is one model's score on one whole eval set.
type EvalResult = trainer.EvalResult

// scoreCheckpoint scores the checkpoint in dir on every set with
// trainer.Evaluate (windows of the model's context at its default stride),
// keeping each set's whole-set row. One worker: the models themselves run
// in parallel, and the result does not depend on it.
func scoreCheckpoint(ctx context.Context, dir string, sets []EvalSet) ([]EvalResult, error) {
	rows, err := trainer.Evaluate(ctx, dir, sets, trainer.EvalOptions{Workers: 1})
	if err != nil {
		return nil, err
	}
	var out []EvalResult
	for _, r := range rows {
		if r.Source == "" {
			out = append(out, r)
		}
	}
	return out, nil
}
