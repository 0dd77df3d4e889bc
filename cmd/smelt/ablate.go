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
