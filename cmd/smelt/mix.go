package main

import (
	"fmt"
	"os"

	"github.com/smelt-dev/smelt/shards"
	"github.com/spf13/cobra"
)

func newMixCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mix",
		Short: "Weighted mixtures of token-shard directories (the GPT-3 recipe)",
		Long: `A mix file lists token-shard directories (written by smelt tokenize) with
sampling weights; smelt train --data MIX.yaml draws from it. Weights are
normalised; relative paths are relative to the mix file. Unknown keys are
errors.

  sources:
    - {name: common_crawl, path: shards/cc, weight: 0.60}
    - {name: webtext2,     path: shards/webtext2, weight: 0.22}
    - {name: wikipedia,    path: shards/wiki, weight: 0.03}`,
	}
	cmd.AddCommand(newMixPlanCmd())
	return cmd
}

func newMixPlanCmd() *cobra.Command {
	var budget string
	lo := shards.LoaderOptions{SeqLen: 256, BatchSize: 8, Seed: 1337, ValFraction: 0.01}
	cmd := &cobra.Command{
		Use:   "plan MIX.yaml|TOKEN_DIR --tokens N",
		Short: "Print tokens available, weight, tokens drawn and epochs per source for a token budget",
		Long: `plan prints, for a training budget of --tokens tokens (K, M, B or T
suffixes: 300B), the table GPT-3 printed for its data: the tokens each
source holds, its weight in the mix, the tokens drawn from it and how many
epochs of it that is. A source that would be repeated more than 4 times
gets a warning (Muennighoff et al. 2023: past about 4 epochs repeated
tokens are worth much less than new ones).

The epochs are counted exactly as smelt train's loader draws them, for
the loader settings given here (defaults: smelt train's): the budget in
whole batches of --batch-size x --seq-len tokens, each source's rows by
its weight, samples of seq_len+1 tokens that share one token with the
next, the --val-fraction held out (0 when training with --val-every 0),
and each shuffle window's last tokens that fill no sample.`,
		Example: `  smelt mix plan mix.yaml --tokens 300B`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			total, err := shards.ParseTokens(budget)
			if err != nil {
				return fmt.Errorf("--tokens: %w", err)
			}
			var m *shards.Mix
			if fi, err := os.Stat(args[0]); err == nil && fi.IsDir() {
				m, err = shards.OpenMixDir(args[0])
				if err != nil {
					return err
				}
			} else if m, err = shards.LoadMix(args[0]); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			tok := m.TokenizerInfo()
			fmt.Fprintf(out, "mix %s: %d sources, tokenizer %s (vocab %d), budget %s tokens\n\n",
				m.Path, len(m.Sources), tok.Name, tok.VocabSize, shards.FormatTokens(total))
			rows, _, err := m.LoaderPlan(lo, total)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "loader: seq_len %d, batch size %d, val fraction %g, seed %d\n\n", lo.SeqLen, lo.BatchSize, lo.ValFraction, lo.Seed)
			_, err = shards.WritePlan(out, rows)
			return err
		},
	}
	cmd.Flags().StringVar(&budget, "tokens", "", "training budget in tokens, e.g. 300B (required)")
	_ = cmd.MarkFlagRequired("tokens")
	f := cmd.Flags()
	f.IntVar(&lo.SeqLen, "seq-len", lo.SeqLen, "training sequence length (smelt train's --seq-len; 256 is the small model's context)")
	f.IntVar(&lo.BatchSize, "batch-size", lo.BatchSize, "sequences per batch (smelt train's --batch-size)")
	f.Float64Var(&lo.ValFraction, "val-fraction", lo.ValFraction, "fraction held out for validation (0: none, as with --val-every 0)")
	f.Uint64Var(&lo.Seed, "seed", lo.Seed, "the loader's seed (its shuffle windows move a few samples between epochs)")
	return cmd
}
