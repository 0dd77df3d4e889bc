package fasttext_test

import (
	"math"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/fasttext"
)

// The bar: on real texts the top-k labels equal the reference fastText's
// on every line and the probabilities agree within 1e-4.
func TestLID176MatchesReference(t *testing.T) {
	r := ref(t)
	m, err := fasttext.Load(r.lidPath())
	if err != nil {
		t.Fatal(err)
	}
	if !m.Quantized() || m.Args.Loss != fasttext.LossHS || m.Dict().NLabels() != 176 {
		t.Fatalf("lid.176.ftz read as %+v, quantized %v, %d labels", m.Args, m.Quantized(), m.Dict().NLabels())
	}
	texts := realTexts(t, 6000)
	if len(texts) < 2000 {
		t.Fatalf("only %d real texts", len(texts))
	}
	const k = 5
	want := r.predict(t, r.lidPath(), texts, k, 0)
	compare(t, m, texts, want, k, 0)
	langs := map[string]int{}
	for _, w := range want {
		if len(w) > 0 {
			langs[w[0].Label]++
		}
	}
	t.Logf("%d texts, %d top-1 languages", len(texts), len(langs))
	if len(langs) < 10 {
		t.Errorf("only %d languages among the texts: %v", len(langs), langs)
	}
}

// compare checks every text's predictions against the reference's: the
// same labels in the same order, probabilities within 1e-4. Labels with
// exactly the same probability (the sigmoid losses' lookup table makes
// such ties) may come in another order, and when k cuts through such a tie
// another of the tied labels may be in the list: fastText's choice among
// them is an artefact of its heap.
func compare(t *testing.T, m *fasttext.Model, texts []string, want [][]refPred, k int, threshold float32) {
	t.Helper()
	bad := 0
	var maxDiff float64
	for i, s := range texts {
		got, err := m.PredictLine(s, k, threshold)
		if err != nil {
			t.Fatal(err)
		}
		ok := len(got) == len(want[i])
		for j := 0; ok && j < len(got); j++ {
			d := math.Abs(float64(got[j].Prob) - want[i][j].Prob)
			maxDiff = max(maxDiff, d)
			ok = d <= 1e-4 && (got[j].Label == want[i][j].Label || tied(want[i], want[i][j].Prob))
		}
		if !ok {
			bad++
			if bad <= 5 {
				t.Errorf("text %d %q:\n go  %v\n ref %v", i, trunc(s), got, want[i])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d texts differ from the reference", bad, len(texts))
	}
	t.Logf("%d texts, largest probability difference %.2g", len(texts), maxDiff)
}

// tied reports whether more than one of preds has probability exactly p.
func tied(preds []refPred, p float64) bool {
	n := 0
	for _, q := range preds {
		if q.Prob == p {
			n++
		}
	}
	return n > 1
}

func trunc(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return strings.TrimSpace(s)
}
