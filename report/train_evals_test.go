package report

import (
	"math"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/trainer"
)

// TestTrainingShowsEvalSets: a training run with eval sets (train --eval,
// a recipe's eval:) shows one line per set in the loss chart and each
// set's last loss and bits per byte in a table, as loss.png does.
func TestTrainingShowsEvalSets(t *testing.T) {
	var recs []trainer.Record
	for s := 1; s <= 40; s++ {
		r := trainer.Record{Step: s, Loss: 6 - float64(s)*0.05, ValLoss: math.NaN()}
		if s%10 == 0 {
			r.ValLoss = r.Loss + 0.1
			r.Evals = map[string]float64{
				"val/web":           r.Loss + 0.1,
				"eval/pages":        r.Loss + 0.3,
				"eval/pages/bpb":    1.5 - float64(s)*0.001,
				"eval/sherlock":     r.Loss + 0.6,
				"eval/sherlock/bpb": 1.9,
			}
		}
		recs = append(recs, r)
	}
	r := &Report{Run: &Run{Steps: []*Step{{Name: "train", TrainLog: recs}}}}
	r.buildTraining()
	if len(r.Training) != 1 {
		t.Fatalf("%d training sections, want 1", len(r.Training))
	}
	tr := r.Training[0]
	if got := lineNames(tr.Chart); got != "training loss,validation loss,eval pages,eval sherlock" {
		t.Errorf("chart lines %q", got)
	}
	if len(tr.Evals) != 2 || tr.Evals[0].Name != "pages" || tr.Evals[0].Step != 40 ||
		math.Abs(tr.Evals[0].Loss-(recs[39].Loss+0.3)) > 1e-12 || math.Abs(tr.Evals[0].BitsPerByte-1.46) > 1e-12 ||
		tr.Evals[1].Name != "sherlock" || tr.Evals[1].BitsPerByte != 1.9 {
		t.Errorf("evals %+v", tr.Evals)
	}
	var b strings.Builder
	r.Title = "t"
	if err := r.Render(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<td>pages</td>", "<td>sherlock</td>", ">1.460<", "eval sherlock"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func lineNames(c *LineChart) string {
	var names []string
	for _, l := range c.Lines {
		names = append(names, l.Name)
	}
	return strings.Join(names, ",")
}
