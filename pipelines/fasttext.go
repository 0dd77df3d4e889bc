package pipelines

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/smelt-dev/smelt/fasttext"
	"github.com/smelt-dev/smelt/filter"
	"github.com/smelt-dev/smelt/ingest"
	"github.com/smelt-dev/smelt/shards"
)

// Classifier kinds.
const (
	ClassifierLogistic = "logistic"
	ClassifierFastText = "fasttext"
)

// resolveLangID checks a source's langid and makes its model path
// absolute (relative to the recipe's directory).
func resolveLangID(s *Source, baseDir string) error {
	switch {
	case s.LangID == "" || s.LangID == "whatlanggo":
		return nil
	case strings.HasPrefix(s.LangID, "fasttext:") && len(s.LangID) > len("fasttext:"):
		if p := strings.TrimPrefix(s.LangID, "fasttext:"); !filepath.IsAbs(p) {
			s.LangID = "fasttext:" + filepath.Join(baseDir, p)
		}
		return nil
	}
	return fmt.Errorf("source %q: langid %q (want whatlanggo or fasttext:PATH)", s.Name, s.LangID)
}

// sourceLangID loads a source's language detector (nil: whatlanggo).
func sourceLangID(s *Source) (ingest.LangDetector, error) {
	path, ok := strings.CutPrefix(s.LangID, "fasttext:")
	if !ok {
		return nil, nil
	}
	l, err := fasttext.LoadLangID(path)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", s.Name, err)
	}
	return l, nil
}

func loadFastTextClassifier(data []byte, label, what string) (*filter.FastTextClassifier, error) {
	m, err := fasttext.Read(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("classifier model %s: %w", what, err)
	}
	c, err := filter.NewFastTextClassifier(m, label)
	if err != nil {
		return nil, fmt.Errorf("classifier model %s: %w", what, err)
	}
	return c, nil
}

// runFastTextClassifier is the classifier step of kind fasttext: it copies
// the given model into the run, or trains one on the positives and
// negatives (labels __label__hq and __label__cc, the same pieces and
// held-out split as the logistic regression).
func runFastTextClassifier(tc *TaskContext, out string) (*shards.Stats, error) {
	c := tc.Run.Recipe.Classifier
	if c.Model != "" {
		data, err := os.ReadFile(c.Model)
		if err != nil {
			return nil, fmt.Errorf("classifier model: %w", err)
		}
		if _, err := loadFastTextClassifier(data, c.Label, c.Model); err != nil {
			return nil, err
		}
		return nil, shards.WriteFileAtomic(tc.path(modelFile), data)
	}
	st := shards.NewStats("classifier")
	examples, err := classifierExamples(tc, st)
	if err != nil {
		return nil, err
	}
	var train []fasttext.Example
	var test []filter.Example
	for _, e := range examples {
		if filter.InHoldOut(e.ID, c.HoldOut) {
			test = append(test, e)
			continue
		}
		label := "cc"
		if e.Positive {
			label = "hq"
		}
		train = append(train, fasttext.Example{Labels: []string{label}, Text: e.Text})
	}
	m, err := fasttext.Train(tc.Ctx, train, fasttext.TrainOptions{Bucket: 1 << c.Bits, Seed: c.Seed})
	if err != nil {
		return nil, err
	}
	if err := m.Save(tc.path(modelFile)); err != nil {
		return nil, err
	}
	clf, err := filter.NewFastTextClassifier(m, filter.DefaultFastTextLabel)
	if err != nil {
		return nil, err
	}
	scores, labels := make([]float64, len(test)), make([]bool, len(test))
	for i, e := range test {
		scores[i], labels[i] = clf.Score(e.Text), e.Positive
	}
	res := filter.ComputeMetrics(scores, labels)
	st.Metric("classifier/held_out_accuracy", "fraction").Add(res.Accuracy)
	st.Metric("classifier/held_out_roc_auc", "auc").Add(res.AUC)
	st.Metric("classifier/held_out_precision", "fraction").Add(res.Precision)
	st.Metric("classifier/held_out_recall", "fraction").Add(res.Recall)
	st.Metric("classifier/examples", "pieces").Add(float64(len(examples)))
	if err := writeJSON(filepath.Join(out, "metrics.json"), map[string]any{
		"kind": ClassifierFastText, "held_out": res, "examples": len(examples),
	}); err != nil {
		return nil, err
	}
	slog.Info("fastText classifier trained", "examples", len(examples), "held_out_accuracy", fmt.Sprintf("%.4f", res.Accuracy),
		"held_out_auc", fmt.Sprintf("%.4f", res.AUC))
	return st, shards.WriteStats(out, st)
}

// useFastTextClassifier puts the run's fastText classifier and keep policy
// into a source's filter stage.
func useFastTextClassifier(tc *TaskContext, stage *filter.Stage, settings map[string]any) error {
	c := tc.Run.Recipe.Classifier
	data, err := os.ReadFile(tc.path(modelFile))
	if err != nil {
		return fmt.Errorf("classifier: %w", err)
	}
	clf, err := loadFastTextClassifier(data, c.Label, modelFile)
	if err != nil {
		return err
	}
	k, err := filter.ParseKeep(c.Keep)
	if err != nil {
		return err
	}
	k.Seed = c.Seed
	sum := sha256.Sum256(data)
	stage.Scorer, stage.Keep = clf, k
	settings["model_sha256"], settings["keep"], settings["fasttext_label"] = hex.EncodeToString(sum[:]), k, clf.Label
	return nil
}
