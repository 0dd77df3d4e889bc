package report

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/ablate"
)

// TestReportAblation: a directory with an ablate/ablation.json gets the
// ablation table (every arm, the eval set's columns, the passes warning)
// and one overlaid training curve per arm.
func TestReportAblation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "filter")
	writeDocDir(t, dir, genDocs()[:5], 1<<20)
	res := &ablate.Result{Model: "tiny", Params: 1000, Tokenizer: "t", Steps: 3, BatchSize: 2, SeqLen: 8, Seeds: []uint64{1, 2},
		Evals: []ablate.EvalSet{{Name: "pages"}}}
	for i, name := range []string{"raw", "filtered"} {
		a := ablate.ArmResult{Name: name, Tokens: 1000, TokensSeen: 48, Passes: float64(5 * i),
			Cells: []ablate.Cell{{Set: "pages", Loss: 5 - float64(i), LossMin: 4.9 - float64(i), LossMax: 5.1 - float64(i), BPB: 3}}}
		for _, seed := range []uint64{1, 2} {
			rd := filepath.Join(dir, "ablate", "runs", name, fmt.Sprintf("seed-%d", seed))
			if err := os.MkdirAll(rd, 0o755); err != nil {
				t.Fatal(err)
			}
			log := "step,loss,val_loss,lr,grad_norm,tokens_per_s,mfu,elapsed_s\n1,6,,0.001,1,100,0,0.1\n2,5.5,,0.001,1,100,0,0.2\n3,5,,0.001,1,100,0,0.3\n"
			if err := os.WriteFile(filepath.Join(rd, "log.csv"), []byte(log), 0o644); err != nil {
				t.Fatal(err)
			}
			a.Runs = append(a.Runs, ablate.RunResult{Arm: name, Seed: seed, Dir: rd})
		}
		res.Arms = append(res.Arms, a)
	}
	if err := os.MkdirAll(filepath.Join(dir, "ablate"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := res.Write(filepath.Join(dir, "ablate")); err != nil {
		t.Fatal(err)
	}
	_, doc, src := renderReport(t, dir, Options{})
	one(t, doc, byID("chart-ablation"), "ablation chart")
	for _, want := range []string{"Ablation: what each arm", "pages loss", "raw", "filtered", "5.000 ±0.100", "4.000 ±0.100", "filtered saw its data 5.0 times"} {
		if !strings.Contains(src, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
