package ablate

import (
	"fmt"
	"strings"

	"github.com/smelt-dev/smelt/shards"
)

// Table renders the result as a text table: per arm, the tokens of its
// training data, the tokens each model saw, the passes over its data, and
// per eval set the mean loss (nats per token) and bits per byte over the
// seeds, each with ± half the seed range (every seed lies within it).
// A note follows for arms whose models saw their data more than 4 times.
func (r *Result) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ablation: model %s (%d parameters), tokenizer %s, %d steps x %d x %d tokens, seeds %v\n",
		r.Model, r.Params, r.Tokenizer, r.Steps, r.BatchSize, r.SeqLen, r.Seeds)
	fmt.Fprintf(&b, "held-out loss in nats/token and bits/byte: mean over seeds ± half the seed range\n\n")
	writeRows(&b, r.rows(""))
	r.notes(&b)
	return b.String()
}

// rows returns the table's header and a row per arm, arms prefixed.
func (r *Result) rows(prefix string) [][]string {
	head := []string{"arm", "tokens", "seen", "passes"}
	for _, e := range r.Evals {
		head = append(head, e.Name+" loss", e.Name+" bpb")
	}
	rows := [][]string{head}
	for _, a := range r.Arms {
		row := []string{prefix + a.Name, shards.FormatTokens(a.Tokens), shards.FormatTokens(a.TokensSeen), fmt.Sprintf("%.1f", a.Passes)}
		for _, c := range a.Cells {
			row = append(row, fmt.Sprintf("%.3f ±%.3f", c.Loss, (c.LossMax-c.LossMin)/2), fmt.Sprintf("%.3f ±%.3f", c.BPB, (c.BPBMax-c.BPBMin)/2))
		}
		rows = append(rows, row)
	}
	return rows
}

func writeRows(b *strings.Builder, rows [][]string) {
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	for _, row := range rows {
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if i == 0 {
				b.WriteString(c + pad)
			} else {
				b.WriteString("  " + pad + c)
			}
		}
		b.WriteString("\n")
	}
}

func (r *Result) notes(b *strings.Builder) {
	for _, a := range r.Arms {
		var removed int64
		for _, s := range a.Sources {
			removed += s.Removed
		}
		if removed > 0 {
			fmt.Fprintf(b, "%s: %d documents removed for sharing a 13-gram with an eval set\n", a.Name, removed)
		}
	}
	for _, a := range r.Arms {
		if a.Passes > 4 {
			fmt.Fprintf(b, "warning: arm %s saw its data %.1f times; past about 4 passes repeated tokens lose most of their value (Muennighoff et al. 2023)\n", a.Name, a.Passes)
		}
	}
	if len(r.Evals) > 0 && len(r.Arms) > 1 {
		set := r.Evals[0].Name
		best := r.Arms[0].Name
		bc, _ := r.Arms[0].Cell(set)
		for _, a := range r.Arms[1:] {
			if c, ok := a.Cell(set); ok && c.Loss < bc.Loss {
				best, bc = a.Name, c
			}
		}
		var beaten []string
		for _, a := range r.Arms {
			if a.Name != best && r.Beats(best, a.Name, set) {
				beaten = append(beaten, a.Name)
			}
		}
		fmt.Fprintf(b, "best on %s: %s; beyond the seed spread (every seed better) than: %s\n", set, best, orNone(beaten))
	}
}

// Compare renders several runs' ablations as one table, arms named
// RUN/ARM, for eval sets that every run has (by name; the numbers compare
// only where the runs used the same model, budget and eval text, which
// the header lines show).
func Compare(names []string, results []*Result) string {
	var b strings.Builder
	common := map[string]int{}
	for _, r := range results {
		for _, e := range r.Evals {
			common[e.Name]++
		}
	}
	for i, r := range results {
		fmt.Fprintf(&b, "%s: model %s (%d parameters), tokenizer %s, %d steps x %d x %d tokens, seeds %v\n",
			names[i], r.Model, r.Params, r.Tokenizer, r.Steps, r.BatchSize, r.SeqLen, r.Seeds)
	}
	b.WriteString("\n")
	var all [][]string
	for i, r := range results {
		c := *r
		c.Evals = nil
		for _, e := range r.Evals {
			if common[e.Name] == len(results) {
				c.Evals = append(c.Evals, e)
			}
		}
		c.Arms = nil
		for _, a := range r.Arms {
			a2 := a
			a2.Cells = nil
			for _, e := range c.Evals {
				if cell, ok := a.Cell(e.Name); ok {
					a2.Cells = append(a2.Cells, cell)
				}
			}
			c.Arms = append(c.Arms, a2)
		}
		rows := c.rows(names[i] + "/")
		if i > 0 {
			rows = rows[1:]
		}
		all = append(all, rows...)
	}
	writeRows(&b, all)
	return b.String()
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
