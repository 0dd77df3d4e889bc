package filter

import (
	"fmt"
	"strings"

	"github.com/smelt-dev/smelt/fasttext"
)

// Scorer scores a document's text in [0, 1] (higher is better quality).
// Stage uses it when Model is nil: it is how a fastText classifier (or any
// other) plugs into the filter with the same keep policies.
type Scorer interface {
	Score(text string) float64
}

// FastTextClassifier scores documents with any supervised fastText model
// (DCLM's openhermes/ELI5-vs-RefinedWeb bigram classifier, FineWeb-Edu style
// models, or one from 'smelt fasttext train'): the score is the probability
// fastText gives Label for the text with its newlines as spaces, as DCLM
// and datatrove compute it, capped at 1 (fastText reports p + 1e-5).
type FastTextClassifier struct {
	Model *fasttext.Model
	// Label is the positive label, prefix included ("__label__hq").
	Label string
}

// DefaultFastTextLabel is the positive label of DCLM's classifier and of
// models from 'smelt fasttext train'.
const DefaultFastTextLabel = "__label__hq"

// NewFastTextClassifier checks that the model is supervised and has the
// label (given with or without its "__label__" prefix).
func NewFastTextClassifier(m *fasttext.Model, label string) (*FastTextClassifier, error) {
	if label == "" {
		label = DefaultFastTextLabel
	}
	if !strings.HasPrefix(label, fasttext.LabelPrefix) {
		label = fasttext.LabelPrefix + label
	}
	labels := m.Labels()
	for _, l := range labels {
		if l == label {
			return &FastTextClassifier{Model: m, Label: label}, nil
		}
	}
	if len(labels) > 8 {
		labels = append(labels[:8], "...")
	}
	return nil, fmt.Errorf("fastText model has no label %q (it has %s)", label, strings.Join(labels, ", "))
}

// Score implements Scorer.
func (c *FastTextClassifier) Score(text string) float64 {
	preds, err := c.Model.Predict(text, -1, 0)
	if err != nil {
		return 0
	}
	for _, p := range preds {
		if p.Label == c.Label {
			return min(float64(p.Prob), 1)
		}
	}
	return 0 // below fastText's 1e-5 floor
}
