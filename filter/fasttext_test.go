package filter

import (
	"context"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/fasttext"
	"github.com/smelt-dev/smelt/shards"
)

// A fastText classifier plugs into the stage like the logistic regression:
// every document gets its score, and the keep policy drops by it.
func TestFastTextClassifierStage(t *testing.T) {
	ex := genExamples(600, 5)
	var train []fasttext.Example
	for _, e := range ex[:400] {
		l := "cc"
		if e.Positive {
			l = "hq"
		}
		train = append(train, fasttext.Example{Labels: []string{l}, Text: e.Text})
	}
	m, err := fasttext.Train(context.Background(), train, fasttext.TrainOptions{Bucket: 1 << 14, Epoch: 5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewFastTextClassifier(m, "__label__nope"); err == nil || !strings.Contains(err.Error(), "__label__hq") {
		t.Errorf("missing label: %v", err)
	}
	clf, err := NewFastTextClassifier(m, "hq")
	if err != nil || clf.Label != "__label__hq" {
		t.Fatal(clf, err)
	}
	keep, _ := ParseKeep("threshold:0.5")
	st := &Stage{Scorer: clf, Keep: keep}
	if rs := st.Reasons(); len(rs) != 1 || rs[0] != QualityThreshold {
		t.Errorf("reasons %v", rs)
	}
	right := 0
	for i, e := range ex[400:] {
		d, _ := st.Process(&shards.Document{ID: e.ID, Text: e.Text})
		if !d.HasQuality || d.Quality < 0 || d.Quality > 1 {
			t.Fatalf("doc %d: quality %v %v", i, d.HasQuality, d.Quality)
		}
		if (d.Drop == nil) == e.Positive {
			right++
		}
		if d.Drop != nil && d.Drop.Reason != QualityThreshold {
			t.Errorf("drop reason %q", d.Drop.Reason)
		}
	}
	if right < 180 {
		t.Errorf("the fastText classifier kept/dropped %d of 200 held-out documents right", right)
	}
}

// Per-language thresholds (FineWeb-2 style) override min_score.
func TestLanguageMinScores(t *testing.T) {
	cfg, err := ParseConfig([]byte("language: {languages: [en, de], min_score: 0.65, min_scores: {de: 0.9}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Language
	for _, c := range []struct {
		lang   string
		score  float64
		reason string
	}{{"en", 0.7, ""}, {"de", 0.7, LangLowScore}, {"de", 0.95, ""}, {"fr", 0.99, LangNotListed}, {"en", 0.5, LangLowScore}} {
		if r, _ := l.Check(&shards.Document{Lang: c.lang, LangScore: c.score}); r != c.reason {
			t.Errorf("%s %.2f: %q, want %q", c.lang, c.score, r, c.reason)
		}
	}
}
