package main

import (
	"fmt"

	"github.com/smelt-dev/smelt/pipelines"
	"github.com/spf13/cobra"
)

func newExplainCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "explain [STAGE|RECIPE]",
		Short: "List the stages a recipe can use, print a stage's recipe defaults, or a bundled recipe",
		Long: `explain with no argument lists the stages of a recipe (steps of smelt run).
explain STAGE prints every key of the stage's recipe section with its
default, as YAML (unset optional sections as null, with what that means);
explain demo, gpt3 or fineweb prints that bundled recipe.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			reg := pipelines.DefaultRegistry()
			if len(args) == 0 {
				for _, k := range reg.Kinds() {
					fmt.Fprintf(w, "%-11s %s\n", k, reg.Stage(k).Doc)
				}
				_, err := fmt.Fprintf(w, "\nbundled recipes: %v (smelt explain NAME prints one)\n", pipelines.BundledNames())
				return err
			}
			if data, ok := pipelines.Bundled(args[0]); ok {
				_, err := w.Write(data)
				return err
			}
			st := reg.Stage(args[0])
			if st == nil {
				return fmt.Errorf("no stage or bundled recipe %q (stages: %v; recipes: %v)", args[0], reg.Kinds(), pipelines.BundledNames())
			}
			fmt.Fprintf(w, "# %s: %s\n", st.Kind, st.Doc)
			if st.Defaults == nil {
				_, err := fmt.Fprintln(w, "# (no settings of its own)")
				return err
			}
			y, err := marshalAllKeys(st.Defaults())
			if err != nil {
				return err
			}
			_, err = w.Write(y)
			return err
		},
	}
}
