package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/smelt-dev/smelt/ablate"
	"github.com/smelt-dev/smelt/pipelines"
)

// printDemoAblation prints the demo's ablation table and what it says.
func printDemoAblation(w io.Writer, run *pipelines.Run) error {
	if run.Recipe.Ablate == nil {
		return nil
	}
	dir := filepath.Join(run.Dir, "ablate")
	res, err := ablate.ReadResult(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	fmt.Fprintf(w, "\n== what each step does to the model (%s; smelt report %s)\n%s", filepath.Join(dir, ablate.TableFile), run.Dir, res.Table())
	return nil
}

// compareAblations prints the ablation tables of several runs (a run
// directory, its ablate/ step, or any directory with an ablation.json).
func compareAblations(w io.Writer, dirs []string) error {
	var names []string
	var results []*ablate.Result
	for _, d := range dirs {
		res, err := ablate.ReadResult(d)
		if os.IsNotExist(err) {
			res, err = ablate.ReadResult(filepath.Join(d, "ablate"))
		}
		if err != nil {
			return fmt.Errorf("report --compare: %s: no ablation (ablation.json): %w", d, err)
		}
		names = append(names, filepath.Base(filepath.Clean(d)))
		results = append(results, res)
	}
	_, err := io.WriteString(w, ablate.Compare(names, results))
	return err
}
