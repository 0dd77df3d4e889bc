package fasttext_test

import (
	"math"
	"testing"

	"github.com/smelt-dev/smelt/fasttext"
)

func TestQuickLID(t *testing.T) {
	r := ref(t)
	m, err := fasttext.Load(r.lidPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v quant=%v", m.Args, m.Quantized())
	texts := []string{"Hello, world! This is a test.", "Bonjour tout le monde", "Das ist ein Test", "", "日本語の文章です。", "Привет мир, как дела?"}
	want := r.predict(t, r.lidPath(), texts, 3, 0)
	for i, s := range texts {
		got, _ := m.PredictLine(s, 3, 0)
		t.Logf("%q go %v ref %v", s, got, want[i])
		for j := range want[i] {
			if j >= len(got) || got[j].Label != want[i][j].Label || math.Abs(float64(got[j].Prob)-want[i][j].Prob) > 1e-4 {
				t.Errorf("mismatch %q", s)
			}
		}
	}
}
