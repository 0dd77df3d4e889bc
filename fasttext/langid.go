package fasttext

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
)

// LangID identifies languages with a fastText language-identification
// model such as lid.176.bin / lid.176.ftz: the language is the best label
// without its "__label__" prefix and the score its probability (capped at
// 1), for the whole text with newlines as spaces, as datatrove (FineWeb),
// Dolma and cc_net call it. It is safe for concurrent use.
type LangID struct {
	Model *Model
	name  string
}

// LoadLangID loads a language-identification model.
func LoadLangID(path string) (*LangID, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fasttext langid: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	m, err := Read(io.TeeReader(f, h))
	if err != nil {
		return nil, fmt.Errorf("fasttext langid model %s: %w", path, err)
	}
	if m.Args.Model != ModelSupervised {
		return nil, fmt.Errorf("fasttext langid model %s: %w", path, ErrNotSupervised)
	}
	return &LangID{Model: m, name: "fasttext:" + hex.EncodeToString(h.Sum(nil))[:16]}, nil
}

// Name identifies the model ("fasttext:" and the start of its sha256).
func (l *LangID) Name() string { return l.name }

// DetectLanguage returns the most probable language and its probability.
func (l *LangID) DetectLanguage(text string) (string, float64) {
	preds, err := l.Model.Predict(text, 1, 0)
	if err != nil || len(preds) == 0 {
		return "", 0
	}
	return strings.TrimPrefix(preds[0].Label, LabelPrefix), min(float64(preds[0].Prob), 1)
}
