package main

import (
	"fmt"

	"github.com/smelt-dev/smelt/ablate"
	"github.com/spf13/cobra"
)

func newSplitCmd() *cobra.Command {
	var (
		fraction     float64
		seed         uint64
		out, heldOut string
		workers      int
		shardMB      float64
	)
	cmd := &cobra.Command{
		Use:   "split DIR... --fraction F --out TRAIN --held-out HELD",
		Short: "Hold documents out by a hash of their id (for held-out evaluation)",
		Long: `split divides document shards into a training side and a held-out side.
A document is held out when sha256("smelt-split", seed, id) falls in the
first --fraction of the hash range, so the split depends only on its id:
the same across runs, worker counts and partitionings, and a document keeps
its side when others are added.

Both outputs are ordinary document directories; each one's dropped/ holds
the other side's documents with the reason split/held_out or split/train.
Use HELD as an eval set (smelt eval, an ablate: section's evals): every
eval set's text is removed from an ablation's training data before it is
tokenized.`,
		Example: `  smelt split runs/demo/filter-web --fraction 0.1 --seed 1 --out web-train --held-out web-held`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" || heldOut == "" {
				return fmt.Errorf("split: --out and --held-out are required")
			}
			tr, held, err := ablate.Split(cmd.Context(), ablate.SplitOptions{Inputs: args, Fraction: fraction, Seed: seed,
				Out: out, HeldOut: heldOut, Workers: workers, TargetBytes: mustShardBytes(shardMB)})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "split: %d documents: %d for training (%s), %d held out (%s)\n",
				tr.In.Docs, tr.Out.Docs, out, held.Out.Docs, heldOut)
			return nil
		},
	}
	f := cmd.Flags()
	f.Float64Var(&fraction, "fraction", 0.1, "fraction of documents held out, in (0, 1)")
	f.Uint64Var(&seed, "seed", 1, "seed of the hash that picks the held-out documents")
	f.StringVarP(&out, "out", "o", "", "output directory for the training side")
	f.StringVar(&heldOut, "held-out", "", "output directory for the held-out side")
	f.IntVarP(&workers, "workers", "j", 0, "worker goroutines (0 = all cores); the output does not depend on it")
	f.Float64Var(&shardMB, "shard-mb", 64, shardMBUsage)
	return cmd
}
