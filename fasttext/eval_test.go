package fasttext_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/smelt-dev/smelt/fasttext"
	"github.com/smelt-dev/smelt/filter"
)

// TestQualityAUC compares a fastText classifier trained here with smelt's
// logistic regression (the GPT-3 classifier) on the same reference-vs-crawl
// chunks: a held-out split by id hash (as 'smelt classifier train' holds
// out), and splits that hold out one whole reference source at a time
// (train on the others, score that source against held-out crawl). It
// takes minutes, so it runs with SMELT_FASTTEXT_EVAL=1:
//
//	SMELT_FASTTEXT_EVAL=1 go test ./fasttext -run QualityAUC -v
func TestQualityAUC(t *testing.T) {
	if os.Getenv("SMELT_FASTTEXT_EVAL") == "" {
		t.Skip("set SMELT_FASTTEXT_EVAL=1 to compare fastText's and the logistic regression's held-out AUC (minutes)")
	}
	srcs := qualitySources(t, true)
	type ex struct {
		id, src, text string
		pos           bool
	}
	var all []ex
	for _, s := range srcs {
		for i, c := range s.chunks {
			all = append(all, ex{fmt.Sprintf("%s#%d", s.name, i), s.name, c, s.positive})
		}
		t.Logf("source %-40s positive %-5v %5d chunks", s.name, s.positive, len(s.chunks))
	}
	ftOpt := fasttext.TrainOptions{}
	evaluate := func(name string, inTest func(e ex) bool) {
		var ftTrain []fasttext.Example
		var lrTrain []filter.Example
		var test []ex
		for _, e := range all {
			if inTest(e) {
				test = append(test, e)
				continue
			}
			ftTrain = append(ftTrain, fasttext.Example{Labels: []string{label(e.pos)}, Text: e.text})
			lrTrain = append(lrTrain, filter.Example{ID: e.id, Text: e.text, Positive: e.pos})
		}
		start := time.Now()
		m, err := fasttext.Train(context.Background(), ftTrain, ftOpt)
		if err != nil {
			t.Fatal(err)
		}
		ftTime := time.Since(start)
		clf, err := filter.NewFastTextClassifier(m, "hq")
		if err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		lr, err := filter.Train(context.Background(), lrTrain, filter.TrainOptions{HoldOut: -1})
		if err != nil {
			t.Fatal(err)
		}
		lrTime := time.Since(start)
		ft, lrs := make([]float64, len(test)), make([]float64, len(test))
		labels := make([]bool, len(test))
		for i, e := range test {
			ft[i], lrs[i], labels[i] = clf.Score(e.text), lr.Model.Score(e.text), e.pos
		}
		a, b := filter.ComputeMetrics(ft, labels), filter.ComputeMetrics(lrs, labels)
		t.Logf("%-44s test %5d (%4d pos)  fastText AUC %.4f acc %.3f (%.1fs)  logistic AUC %.4f acc %.3f (%.1fs)",
			name, a.N, a.Positives, a.AUC, a.Accuracy, ftTime.Seconds(), b.AUC, b.Accuracy, lrTime.Seconds())
	}
	evaluate("hash split (0.2, as smelt classifier train)", func(e ex) bool { return filter.InHoldOut(e.id, 0.2) })
	for _, s := range srcs {
		if !s.positive {
			continue
		}
		src := s.name
		evaluate("held-out source "+src, func(e ex) bool {
			if e.pos {
				return e.src == src
			}
			return filter.InHoldOut(e.id, 0.2)
		})
	}
}
