package ablate

import (
	"strings"
	"testing"
)

func result(arms map[string]float64, sets ...string) *Result {
	r := &Result{Model: "tiny", Steps: 10, BatchSize: 2, SeqLen: 8, Seeds: []uint64{1, 2}}
	for _, s := range sets {
		r.Evals = append(r.Evals, EvalSet{Name: s})
	}
	for _, name := range []string{"raw", "clean"} {
		loss, ok := arms[name]
		if !ok {
			continue
		}
		a := ArmResult{Name: name, Tokens: 1000, TokensSeen: 5000, Passes: 5}
		for _, s := range sets {
			a.Cells = append(a.Cells, Cell{Set: s, Loss: loss, LossMin: loss - 0.05, LossMax: loss + 0.05, BPB: loss / 2})
		}
		r.Arms = append(r.Arms, a)
	}
	return r
}

// TestTableAndCompare: the table ranks beyond the seed spread only when
// the ranges do not overlap, warns past 4 passes, and Compare lines up
// two runs' arms on the eval sets they share.
func TestTableAndCompare(t *testing.T) {
	a := result(map[string]float64{"raw": 5, "clean": 4.5}, "pages", "book")
	tab := a.Table()
	for _, want := range []string{"best on pages: clean; beyond the seed spread (every seed better) than: raw", "warning: arm raw saw its data 5.0 times", "4.500 ±0.050"} {
		if !strings.Contains(tab, want) {
			t.Errorf("table lacks %q:\n%s", want, tab)
		}
	}
	close := result(map[string]float64{"raw": 5, "clean": 4.95}, "pages")
	if close.Beats("clean", "raw", "pages") || !strings.Contains(close.Table(), "than: none") {
		t.Errorf("overlapping seeds ranked beyond the spread:\n%s", close.Table())
	}
	b := result(map[string]float64{"clean": 4.2}, "pages")
	cmp := Compare([]string{"run1", "run2"}, []*Result{a, b})
	for _, want := range []string{"run1/raw", "run1/clean", "run2/clean", "pages loss", "4.200 ±0.050"} {
		if !strings.Contains(cmp, want) {
			t.Errorf("compare lacks %q:\n%s", want, cmp)
		}
	}
	if strings.Contains(cmp, "book") {
		t.Errorf("compare shows a set only run1 has:\n%s", cmp)
	}
}
