package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/smelt-dev/smelt/ablate"
	"github.com/smelt-dev/smelt/tokenize"
	"github.com/spf13/cobra"
)

func newMixSearchCmd() *cobra.Command {
	var (
		out, tok, model   string
		evals             []string
		steps, batch      int
		lr                float64
		seeds             []uint
		proxies, parallel int
		seed              uint64
	)
	cmd := &cobra.Command{
		Use:   "mixsearch NAME=DOCDIR... --eval NAME=DATA --tokenizer TOK --out DIR",
		Short: "Search source weights for the lowest held-out loss (RegMix: proxy models, a regression, a proposal)",
		Long: `mixsearch finds a mix of sources by RegMix (Liu et al. 2024): it removes
the eval sets' text from every source (13-gram decontamination),
tokenizes them, trains --proxies small models (--model, --steps x
--batch-size x the model's context tokens, the first seed) on random
weight vectors (Dirichlet(1,...,1), seeded), fits held-out loss as a ridge
regression on the weights and their pairwise products, and proposes the
mean of the 100 best-predicted of 100,000 random weight vectors. It then
trains fresh models on the proposal and on uniform weights with every
--seeds and prints both, with the seed spread.

Output in --out: mix.yaml (a smelt mix file with the proposed weights),
blend.txt (the Megatron --data-path blend string, each source's dataset
named as smelt export --format megatron names it), mixsearch.json (the
proxies, the fit and the validation).`,
		Example: `  smelt mixsearch web=runs/a/dedup books=runs/a/ingest-books code=runs/a/filter-code \
    --eval pages=held-pages --tokenizer runs/a/tokenizer/tokenizer.json --proxies 16 --out search`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" || tok == "" || len(evals) == 0 {
				return fmt.Errorf("mixsearch: --out, --tokenizer and at least one --eval are required")
			}
			t, err := tokenize.GetOrLoad(tok)
			if err != nil {
				return err
			}
			cfg := ablate.Config{Out: out, Tokenizer: t, TokenizerPath: tok, Model: model, Steps: steps, BatchSize: batch, LR: lr,
				Warmup: steps / 10, Parallel: parallel, Log: func(s string) { slog.Info("mixsearch: " + s) }}
			for _, s := range seeds {
				cfg.Seeds = append(cfg.Seeds, uint64(s))
			}
			for _, e := range evals {
				name, path, ok := strings.Cut(e, "=")
				if !ok {
					return fmt.Errorf("mixsearch: --eval %q: want NAME=DATA", e)
				}
				cfg.Evals = append(cfg.Evals, ablate.EvalSet{Name: name, Paths: strings.Split(path, ",")})
			}
			var srcs []ablate.Source
			for _, a := range args {
				name, dirs, ok := strings.Cut(a, "=")
				if !ok {
					return fmt.Errorf("mixsearch: source %q: want NAME=DOCDIR[,DOCDIR...]", a)
				}
				srcs = append(srcs, ablate.Source{Name: name, Dirs: strings.Split(dirs, ",")})
			}
			res, err := ablate.MixSearch(cmd.Context(), cfg, srcs, ablate.SearchOptions{Proxies: proxies, Seed: seed})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "mixsearch: %d proxies, fit RMSE %.4f nats\n", len(res.Proxies), res.FitRMSE)
			for _, v := range []struct {
				name string
				v    ablate.Validation
			}{{"proposed", res.Proposed}, {"uniform", res.Uniform}} {
				fmt.Fprintf(w, "%-8s weights %v: held-out loss %.4f (seeds %.4f..%.4f; predicted %.4f)\n", v.name, fmtW(v.v.Weights), v.v.Loss, v.v.Min, v.v.Max, v.v.Predicted)
			}
			fmt.Fprintf(w, "mix file: %s\nMegatron blend: %s\n", res.MixFile, res.Blend)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "out", "o", "", "output directory")
	f.StringVarP(&tok, "tokenizer", "t", "", "tokenizer: a built-in name or a tokenizer file")
	f.StringVar(&model, "model", "tiny", "proxy model: a preset or a model YAML file")
	f.StringArrayVar(&evals, "eval", nil, "held-out set NAME=DATA (document directories, text or JSONL files, comma-separated); repeatable")
	f.IntVar(&steps, "steps", 300, "training steps per proxy")
	f.IntVar(&batch, "batch-size", 8, "sequences per step")
	f.Float64Var(&lr, "lr", 3e-3, "peak learning rate")
	f.UintSliceVar(&seeds, "seeds", []uint{1, 2}, "seeds of the validation runs (the proxies use the first)")
	f.IntVar(&proxies, "proxies", 0, "proxy runs K (0: twice the regression's terms)")
	f.Uint64Var(&seed, "seed", 1, "seed of the weight draws")
	f.IntVar(&parallel, "parallel", 0, "models trained at once (0 = the cores)")
	return cmd
}

func fmtW(w []float64) string {
	parts := make([]string, len(w))
	for i, x := range w {
		parts[i] = fmt.Sprintf("%.3f", x)
	}
	return "[" + strings.Join(parts, " ") + "]"
}
