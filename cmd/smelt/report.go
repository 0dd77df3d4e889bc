package main

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/smelt-dev/smelt/report"
	"github.com/smelt-dev/smelt/shards"
	"github.com/spf13/cobra"
)

func newReportCmd() *cobra.Command {
	var out, mixFile, tokens, keep string
	var compare bool
	cmd := &cobra.Command{
		Use:   "report RUN_DIR|DIR --out report.html",
		Short: "Write one self-contained HTML report of a run or stage: funnel, drops per rule, quality, languages, dedup clusters, tokens, loss",
		Long: `report reads a stage output directory (one with manifest.json) or a run
directory that smelt run wrote (its subdirectories with a manifest.json are
the steps, in the order of .smelt/plan.json) and writes one HTML file with
inline CSS and SVG charts, no script and nothing fetched from the network:

  - the funnel: documents and bytes entering and leaving every step, per source;
  - drops per rule, each with an example document from the dropped side output;
  - the quality-score histogram, kept versus dropped, with the share kept
    and the keep policy's probability (--keep, or the recipe's);
  - languages;
  - dedup: cluster sizes and the largest clusters with their members side by side;
  - tokens per source and the mixture's epochs table (--mix, RUN_DIR/mix.yaml,
    or the recipe's weights), for the recipe's training budget or --tokens;
  - the training and validation loss when the run trained (log.csv).`,
		Example: `  smelt report runs/demo --out report.html
  smelt report runs/demo/filter-cc --out filter.html
  smelt report --compare runs/demo runs/demo-gentler   # the ablation tables side by side`,
		Args: func(cmd *cobra.Command, args []string) error {
			if compare {
				return cobra.MinimumNArgs(1)(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if compare {
				return compareAblations(cmd.OutOrStdout(), args)
			}
			if out == "" {
				return errors.New("--out is required")
			}
			var budget int64
			if tokens != "" {
				n, err := shards.ParseTokens(tokens)
				if err != nil {
					return fmt.Errorf("--tokens: %w", err)
				}
				budget = n
			}
			dirs, err := localDirs(cmd.Context(), args, nil)
			if err != nil {
				return err
			}
			run, err := report.Load(dirs[0], report.Options{MixFile: mixFile, Budget: budget, Keep: keep})
			if err != nil {
				return err
			}
			f, err := shards.CreateAtomic(out)
			if err != nil {
				return err
			}
			defer f.Abort()
			if err := report.Write(cmd.Context(), f, run); err != nil {
				return err
			}
			if err := f.Commit(); err != nil {
				return err
			}
			slog.Info("report written", "out", out, "steps", len(run.Steps))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "HTML file to write")
	cmd.Flags().BoolVar(&compare, "compare", false, "print the ablation tables of the runs given (RUN/ablate/ablation.json) as one table")
	cmd.Flags().StringVar(&mixFile, "mix", "", "mix YAML for the epochs table (default RUN_DIR/mix.yaml or the recipe's weights)")
	cmd.Flags().StringVar(&tokens, "tokens", "", "token budget of the epochs table, e.g. 300B (default the recipe's steps x batch_size x seq_len)")
	cmd.Flags().StringVar(&keep, "keep", "", "quality keep policy to draw over the quality histogram, pareto:ALPHA or threshold:X (default the recipe's)")
	return cmd
}
