package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/trainer"
	"github.com/spf13/cobra"
)

// trainData is what --data resolves to.
type trainData struct {
	info       trainer.DataInfo
	train, val trainer.Batcher
	desc       string
}

// openTrainData opens --data: a mix YAML file or a token-shard directory
// through the shards loader, or for demos and benchmarks "synthetic:VOCAB"
// (a random Markov chain) or "text:FILE" (the file's bytes, vocabulary 256,
// the last tenth held out).
func openTrainData(spec string, o trainer.Options, valFraction float64) (*trainData, error) {
	switch {
	case strings.HasPrefix(spec, "synthetic:"):
		v, err := strconv.Atoi(strings.TrimPrefix(spec, "synthetic:"))
		if err != nil || v < 2 {
			return nil, fmt.Errorf("--data %s: want synthetic:VOCAB with VOCAB >= 2", spec)
		}
		return &trainData{info: trainer.DataInfo{Vocab: v, Tokenizer: "synthetic"},
			train: trainer.NewSyntheticBatcher(v, 16, o.Seed), val: trainer.NewSyntheticBatcher(v, 16, o.Seed+1),
			desc: fmt.Sprintf("synthetic Markov chain over %d tokens", v)}, nil
	case strings.HasPrefix(spec, "text:"):
		path := strings.TrimPrefix(spec, "text:")
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--data: %w", err)
		}
		if len(raw) < 20*(o.SeqLen+1) {
			return nil, fmt.Errorf("--data %s: %d bytes is too little text for sequences of %d", path, len(raw), o.SeqLen)
		}
		toks := make([]uint32, len(raw))
		for i, c := range raw {
			toks[i] = uint32(c)
		}
		split := len(toks) * 9 / 10
		return &trainData{info: trainer.DataInfo{Vocab: 256, Tokenizer: "bytes"},
			train: &trainer.SliceBatcher{Tokens: toks[:split], SeqLen: o.SeqLen},
			val:   &trainer.SliceBatcher{Tokens: toks[split:], SeqLen: o.SeqLen},
			desc:  fmt.Sprintf("%s as bytes (%d train, %d validation)", path, split, len(toks)-split)}, nil
	}
	var mix *shards.Mix
	var err error
	if fi, serr := os.Stat(spec); serr == nil && fi.IsDir() {
		mix, err = shards.OpenMixDir(spec)
	} else {
		mix, err = shards.LoadMix(spec)
	}
	if err != nil {
		return nil, fmt.Errorf("--data %s: %w", spec, err)
	}
	lo := shards.LoaderOptions{SeqLen: o.SeqLen, BatchSize: o.BatchSize, Seed: o.Seed, ValFraction: valFraction}
	tl, err := shards.NewLoader(mix, lo)
	if err != nil {
		return nil, fmt.Errorf("--data %s: %w", spec, err)
	}
	d := &trainData{info: trainer.DataInfo{Vocab: mix.VocabSize(), Tokenizer: mix.Tokenizer(), EOT: mix.EOT()}, train: tl,
		desc: fmt.Sprintf("%s (%d sources, tokenizer %s)", spec, len(mix.Sources), mix.Tokenizer())}
	if valFraction > 0 {
		lo.Val = true
		vl, err := shards.NewLoader(mix, lo)
		if err != nil {
			return nil, fmt.Errorf("--data %s validation: %w", spec, err)
		}
		// Probe one batch: a small corpus may hold out no document at all,
		// which should cost the validation loss, not the run.
		st, err := vl.State()
		if err != nil {
			return nil, err
		}
		if err := vl.Next(make([]uint32, o.BatchSize*(o.SeqLen+1))); err != nil {
			slog.Warn("no validation loss for this run", "data", spec, "val_fraction", valFraction, "err", err)
			return d, nil
		}
		if err := vl.Restore(st); err != nil {
			return nil, err
		}
		d.val = vl
	}
	return d, nil
}

func newTrainCmd() *cobra.Command {
	var (
		data, config, out, resume string
		threads                   int
		valFraction               float64
	)
	o := trainer.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "train --data MIX.yaml|SHARD_DIR [--config tiny|small|gpt2-124m|FILE] [--steps N] [--out DIR]",
		Short: "Train a GPT-2 style model on CPU from token shards",
		Long: `train trains a GPT-2 (learned positions, pre-LayerNorm blocks, tanh GELU MLP,
tied head) on the token shards of --data, a mixture YAML or one token-shard
directory, read through the shards loader (packed sequences, a held-out
validation split by document id). The vocabulary comes from the shards.

Each step prints loss, learning rate, gradient norm, tokens/s and MFU
against the sgemm peak measured at start. The run directory (--out) gets
log.csv, loss.png and checkpoint.bin (model, AdamW moments, step, RNG and
loader position; written atomically every --checkpoint-every steps, at the
end and on interrupt). --resume continues a run from its checkpoint with a
loss sequence bit-identical to an uninterrupted run on the same threads.

The matrix products run on OpenBLAS when smelt is built with -tags openblas
(apt-get install libopenblas-dev), else in pure Go: gonum's sgemm, or an
AVX2 kernel when built with GOEXPERIMENT=simd; the log says which. --data synthetic:VOCAB and text:FILE (bytes) are for trying the
trainer without shards.`,
		Example: `  smelt train --data mix.yaml --config small --steps 2000 --out runs/small
  smelt train --resume runs/small --steps 4000
  smelt train --data text:input.txt --config tiny --steps 200 --out runs/shakespeare`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if threads <= 0 {
				threads = runtime.NumCPU()
			}
			runtime.GOMAXPROCS(threads)
			be := trainer.NewCPU(threads)
			if resume != "" {
				if out == "" {
					out = resume
					if fi, err := os.Stat(resume); err == nil && !fi.IsDir() {
						out = filepath.Dir(resume)
					}
				}
				ck, err := trainer.LoadCheckpoint(trainer.ResolveCheckpoint(resume))
				if err != nil {
					return err
				}
				if data == "" {
					return errors.New("--resume needs --data (the same data the run started on)")
				}
				d, err := openTrainData(data, ck.Options, ck.Options.ValFraction)
				if err != nil {
					return err
				}
				steps := 0
				if cmd.Flags().Changed("steps") {
					steps = o.Steps
				}
				tr, err := trainer.Resume(resume, be, steps, out, trainer.MeasurePeak(be, 1024), d.info, d.train, d.val)
				if err != nil {
					return err
				}
				return runTraining(cmd, tr, d.desc)
			}
			if data == "" {
				return errors.New("--data is required (a mix YAML, a token-shard directory, synthetic:VOCAB or text:FILE)")
			}
			if out == "" {
				return errors.New("--out is required")
			}
			if _, err := os.Stat(filepath.Join(out, trainer.CheckpointFile)); err == nil {
				return fmt.Errorf("%s already holds a run: use --resume %s, or another --out", out, out)
			}
			shape, err := trainer.LoadConfig(config) // checked before opening data
			if err != nil {
				return err
			}
			if o.SeqLen == 0 {
				o.SeqLen = shape.Context
			}
			o.ValFraction = valFraction
			d, err := openTrainData(data, o, valFraction)
			if err != nil {
				return err
			}
			cfg, err := trainer.ResolveConfig(config, d.info.Vocab)
			if err != nil {
				return err
			}
			o.OutDir = out
			o.PeakFLOPS = trainer.MeasurePeak(be, 1024)
			if d.val == nil {
				o.ValEvery = 0
			}
			tr, err := trainer.New(cfg, be, o, d.info, d.train, d.val)
			if err != nil {
				return err
			}
			return runTraining(cmd, tr, d.desc)
		},
	}
	f := cmd.Flags()
	f.StringVar(&data, "data", "", "mix YAML file, token-shard directory, synthetic:VOCAB or text:FILE")
	f.StringVar(&config, "config", "small", "model: tiny, small, gpt2-124m or a YAML file (layers, heads, width, context)")
	f.StringVar(&out, "out", "", "run directory for checkpoint.bin, log.csv and loss.png")
	f.StringVar(&resume, "resume", "", "continue the run in this directory (or checkpoint file)")
	f.IntVar(&o.Steps, "steps", o.Steps, "total optimizer steps")
	f.IntVar(&o.BatchSize, "batch-size", o.BatchSize, "sequences per micro-batch")
	f.IntVar(&o.SeqLen, "seq-len", 0, "sequence length (0: the model's context)")
	f.IntVar(&o.BatchTokens, "batch-tokens", 0, "tokens per optimizer step, reached by gradient accumulation (0: one micro-batch)")
	f.Float64Var(&o.LR, "lr", o.LR, "peak learning rate")
	f.Float64Var(&o.MinLR, "min-lr", o.MinLR, "learning rate floor of the cosine decay")
	f.IntVar(&o.WarmupSteps, "warmup", o.WarmupSteps, "linear warmup steps")
	f.IntVar(&o.DecaySteps, "decay-steps", 0, "step at which the cosine reaches --min-lr (0: --steps)")
	f.Float64Var(&o.WeightDecay, "weight-decay", o.WeightDecay, "AdamW weight decay on matrices")
	f.Float64Var(&o.GradClip, "grad-clip", o.GradClip, "clip the global gradient norm to this (0: off)")
	f.IntVar(&o.ValEvery, "val-every", o.ValEvery, "evaluate the validation loss every N steps (0: never)")
	f.IntVar(&o.ValBatches, "val-batches", o.ValBatches, "batches per validation")
	f.Float64Var(&valFraction, "val-fraction", 0.01, "fraction of documents held out for validation (shard data)")
	f.IntVar(&o.CheckpointEvery, "checkpoint-every", o.CheckpointEvery, "write a checkpoint every N steps (0: only at the end)")
	f.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the initial weights and the loader's shuffle")
	f.IntVar(&threads, "threads", 0, "threads for the math (0: all cores)")
	return cmd
}

func runTraining(cmd *cobra.Command, tr *trainer.Trainer, desc string) error {
	o := tr.Options()
	w := cmd.ErrOrStderr()
	c := tr.Model.Config
	fmt.Fprintf(w, "smelt train: %d layers, %d heads, width %d, context %d, vocab %d (%.2fM params) on %s\n",
		c.Layers, c.Heads, c.Width, c.Context, c.Vocab, float64(c.NumParams())/1e6, desc)
	fmt.Fprintf(w, "memory: %.2f GiB of activations for %d x %d, %.2f GiB of parameters, gradients and AdamW moments\n",
		float64(c.ActivationBytes(o.BatchSize, o.SeqLen))/(1<<30), o.BatchSize, o.SeqLen, float64(16*c.NumParams())/(1<<30))
	if !trainer.HasOpenBLAS {
		fmt.Fprintln(w, "hint: build with -tags openblas (apt-get install libopenblas-dev) for the fast matrix kernel")
	}
	fmt.Fprintf(w, "kernel: %s; sgemm peak %.1f GFLOP/s; %d tokens/step (%d x %d x %d accumulation)\n",
		tr.Model.Backend().Name(), o.PeakFLOPS/1e9, o.BatchTokens, o.BatchSize, o.SeqLen, o.BatchTokens/(o.BatchSize*o.SeqLen))
	tr.OnStep = func(r trainer.Record) {
		val := ""
		if !math.IsNaN(r.ValLoss) {
			val = fmt.Sprintf(" | val %.4f", r.ValLoss)
		}
		fmt.Fprintf(w, "step %6d/%d | loss %.4f%s | lr %.2e | norm %.3f | %.0f tok/s | MFU %.1f%%\n",
			r.Step, o.Steps, r.Loss, val, r.LR, r.GradNorm, r.TokensPerS, 100*r.MFU)
	}
	if err := tr.Run(cmd.Context()); err != nil {
		return err
	}
	fmt.Fprintf(w, "done: %s\n", filepath.Join(o.OutDir, trainer.CheckpointFile))
	return nil
}
