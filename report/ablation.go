package report

import (
	"fmt"
	"path/filepath"

	"github.com/smelt-dev/smelt/ablate"
	"github.com/smelt-dev/smelt/trainer"
)

// AblationSection is an ablate step's table and its arms' training curves
// overlaid (the mean over seeds per arm).
type AblationSection struct {
	Step   string
	Result *ablate.Result
	// Header and Rows are the table, as ablate.Result.Table prints it.
	Header []string
	Rows   [][]string
	Chart  *LineChart
	Notes  []string
}

// buildAblation reads RUN/ablate/ablation.json, when the run has one.
func (r *Report) buildAblation() {
	dir := filepath.Join(r.Run.Path, "ablate")
	res, err := ablate.ReadResult(dir)
	if err != nil {
		return
	}
	s := &AblationSection{Step: "ablate", Result: res, Header: []string{"arm", "tokens", "seen", "passes"}}
	for _, e := range res.Evals {
		s.Header = append(s.Header, e.Name+" loss", e.Name+" bits/byte")
	}
	var names []string
	var xs, ys [][]float64
	for _, a := range res.Arms {
		row := []string{a.Name, fmtNum(float64(a.Tokens)), fmtNum(float64(a.TokensSeen)), fmt.Sprintf("%.1f", a.Passes)}
		for _, c := range a.Cells {
			row = append(row, fmt.Sprintf("%.3f ±%.3f", c.Loss, (c.LossMax-c.LossMin)/2), fmt.Sprintf("%.3f ±%.3f", c.BPB, (c.BPBMax-c.BPBMin)/2))
		}
		s.Rows = append(s.Rows, row)
		if a.Passes > 4 {
			s.Notes = append(s.Notes, fmt.Sprintf("%s saw its data %.1f times: past about 4 passes repeated tokens lose most of their value.", a.Name, a.Passes))
		}
		// The arm's training loss, averaged over its seeds.
		var x, y []float64
		n := 0
		for _, run := range a.Runs {
			recs, err := trainer.ReadLog(filepath.Join(run.Dir, "log.csv"))
			if err != nil || len(recs) == 0 {
				continue
			}
			if x == nil {
				x, y = make([]float64, len(recs)), make([]float64, len(recs))
				for i, rec := range recs {
					x[i] = float64(rec.Step)
				}
			}
			for i := range min(len(y), len(recs)) {
				y[i] += recs[i].Loss
			}
			n++
		}
		if n > 0 {
			for i := range y {
				y[i] /= float64(n)
			}
			names, xs, ys = append(names, a.Name+" (training loss)"), append(xs, x), append(ys, y)
		}
	}
	if len(ys) > 0 {
		s.Chart = NewLineChart("ablation", names, xs, ys, make([]bool, len(ys)))
	}
	r.Ablation = s
}
