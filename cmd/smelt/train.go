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
	"sync/atomic"

	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/tokenize"
	"github.com/smelt-dev/smelt/trainer"
	"github.com/spf13/cobra"
)

// trainData is what --data resolves to.
type trainData struct {
	info       trainer.DataInfo
	train, val trainer.Batcher
	desc       string
	// valFraction is the fraction actually held out (0: none).
	valFraction float64
}

// openTrainData opens --data: a mix YAML file or a token-shard directory
// through the shards loader (holding out valFraction when o.ValEvery is
// set), or for demos and benchmarks "synthetic:VOCAB" (a random Markov
// chain) or "text:FILE" (the file's bytes, vocabulary 256, the last tenth
// held out).
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
	// Held-out data is set aside only when validating.
	lo := shards.LoaderOptions{SeqLen: o.SeqLen, BatchSize: o.BatchSize, Seed: o.Seed}
	if o.ValEvery > 0 {
		lo.ValFraction = valFraction
	}
	tl, vl, err := shards.OpenTraining(mix, lo)
	if err != nil {
		return nil, fmt.Errorf("--data %s: %w", spec, err)
	}
	tinfo := mix.TokenizerInfo()
	d := &trainData{info: trainer.DataInfo{Vocab: mix.VocabSize(), Tokenizer: tinfo.Name, EOT: tinfo.EOT, TokenizerHash: tinfo.RanksHash},
		train: tl, valFraction: tl.Options().ValFraction,
		desc: fmt.Sprintf("%s (%d sources, tokenizer %s)", spec, len(mix.Sources), mix.Tokenizer())}
	if vl != nil {
		d.val = vl
	}
	return d, nil
}

// embedTokenizer fills the tokenizer bytes a checkpoint embeds: from
// --tokenizer, else from the shards' tokenizer name when it is built in or
// names a readable file. Its ranks must be the shards'.
func embedTokenizer(d *trainData, flag string, tt tokenize.Options) error {
	if d.info.TokenizerHash == "" { // synthetic or text data
		return nil
	}
	path := flag
	if path == "" {
		path = d.info.Tokenizer
		if !tokenize.IsBuiltin(path) {
			if _, err := os.Stat(path); err != nil {
				slog.Warn("the checkpoint will not embed the tokenizer: pass --tokenizer FILE so that generate and resume work from any directory",
					"tokenizer", d.info.Tokenizer)
				return nil
			}
		}
	}
	tok, err := tokenize.Open(path, tt)
	if err != nil {
		return fmt.Errorf("--tokenizer: %w", err)
	}
	hash, file, data, err := trainer.TokenizerInfo(tok, path)
	if err != nil {
		return err
	}
	if hash != d.info.TokenizerHash {
		return fmt.Errorf("--tokenizer %s has ranks hash %s, but the shards were tokenized with %q (ranks hash %s)", path, hash, d.info.Tokenizer, d.info.TokenizerHash)
	}
	d.info.TokenizerFile, d.info.TokenizerData = file, data
	return nil
}

func newTrainCmd() *cobra.Command {
	var (
		data, config, out, resume string
		tokFlag                   string
		ttOpts                    tokenize.Options // issue 25: a tiktoken --tokenizer's pattern and specials
		threads                   int
		valFraction               float64
		evalFlags                 []string
	)
	o := trainer.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "train --data MIX.yaml|SHARD_DIR [--config tiny|small|gpt2-124m|FILE] [--steps N] [--out DIR]",
		Short: "Train a GPT-2 style model on CPU from token shards",
		Long: `train trains a GPT-2 (learned positions, pre-LayerNorm blocks, tanh GELU MLP,
tied head) on the token shards of --data, a mixture YAML or one token-shard
directory, read through the shards loader: shuffled samples of seq_len+1
tokens drawn from windows of many documents, every batch carrying each
source's share of rows. With --val-every, --val-fraction of the data is held
out: whole documents by a hash of their id, or, for a source with too few
documents (a few long books), chunks of them by a hash of (document, offset);
the log says which. The vocabulary comes from the shards. The checkpoint
embeds the tokenizer (see --tokenizer), so smelt generate needs no file.

Each step prints loss, learning rate, gradient norm, tokens/s and MFU
against the sgemm peak measured at start. The run directory (--out) gets
log.csv, loss.png and checkpoint.bin (model, AdamW moments, step, RNG and
loader position; written atomically every --checkpoint-every steps, at the
end and on interrupt). --resume continues a run from its checkpoint (on the
data it recorded, unless --data says otherwise) with a loss sequence
bit-identical to an uninterrupted run on the same threads. --resume --steps N
past the run's steps stretches the cosine to end at N (the learning rate
rises at the resumed step; the log says from what to what); a run started
with --decay-steps keeps it, and its steps past it train at --min-lr.

The matrix products run on OpenBLAS when smelt is built with -tags openblas
(apt-get install libopenblas-dev), else in pure Go: gonum's sgemm, or an
AVX2 kernel when built with GOEXPERIMENT=simd; the log says which. --data synthetic:VOCAB and text:FILE (bytes) are for trying the
trainer without shards.`,
		Example: `  smelt train --data mix.yaml --config small --steps 2000 --out runs/small
  smelt train --resume runs/small --steps 4000
  smelt train --resume demo-run/train --steps 3000     # a smelt run's training step
  smelt train --data text:input.txt --config tiny --steps 200 --out runs/shakespeare`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if threads <= 0 {
				threads = runtime.NumCPU()
			}
			runtime.GOMAXPROCS(threads)
			be := trainer.NewCPU(threads)
			var evalSets []trainer.EvalSet
			for _, e := range evalFlags {
				s, err := parseEvalSet(e)
				if err != nil {
					return fmt.Errorf("--eval: %w", err)
				}
				evalSets = append(evalSets, s)
			}
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
					data = ck.Options.Data
				}
				if data == "" {
					return errors.New("--resume needs --data (the same data the run started on; this checkpoint does not record it)")
				}
				d, err := openTrainData(data, ck.Options, ck.Options.ValFraction)
				if err != nil {
					return err
				}
				if d.valFraction != ck.Options.ValFraction {
					return fmt.Errorf("--resume %s: the run held out %g of its data for validation, but %s can hold out %g now", resume, ck.Options.ValFraction, data, d.valFraction)
				}
				if tokFlag != "" {
					if err := embedTokenizer(d, tokFlag, ttOpts); err != nil {
						return err
					}
				}
				steps := 0
				if cmd.Flags().Changed("steps") {
					steps = o.Steps
				}
				tr, err := trainer.Resume(resume, be, steps, out, trainer.MeasurePeak(be, 1024), d.info, d.train, d.val)
				if err != nil {
					return err
				}
				if cmd.Flags().Changed("eval") || cmd.Flags().Changed("eval-every") {
					every := tr.Options().EvalEvery
					if cmd.Flags().Changed("eval-every") {
						every = o.EvalEvery
					}
					if !cmd.Flags().Changed("eval") {
						evalSets = tr.Options().Eval
					}
					if err := tr.SetEval(evalSets, every); err != nil {
						return err
					}
				}
				return runTraining(cmd, tr, d)
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
			d, err := openTrainData(data, o, valFraction)
			if err != nil {
				return err
			}
			if err := embedTokenizer(d, tokFlag, ttOpts); err != nil {
				return err
			}
			o.ValFraction = d.valFraction
			if o.Data, err = absData(data); err != nil {
				return err
			}
			cfg, err := trainer.ResolveConfig(config, d.info.Vocab)
			if err != nil {
				return err
			}
			o.OutDir = out
			o.PeakFLOPS = trainer.MeasurePeak(be, 1024)
			o.Eval = evalSets
			if d.val == nil {
				o.ValEvery = 0
			}
			tr, err := trainer.New(cfg, be, o, d.info, d.train, d.val)
			if err != nil {
				return err
			}
			return runTraining(cmd, tr, d)
		},
	}
	f := cmd.Flags()
	f.StringVar(&data, "data", "", "mix YAML file, token-shard directory, synthetic:VOCAB or text:FILE (with --resume: default the run's)")
	f.StringVar(&tokFlag, "tokenizer", "", "the shards' tokenizer (built-in name or file) to embed in the checkpoint (default: the shards' tokenizer name, when built in or a readable file)")
	addTiktokenFlags(cmd, &ttOpts)
	f.StringVar(&config, "config", "small", "model: tiny, small, gpt2-124m or a YAML file (layers, heads, width, context)")
	f.StringVarP(&out, "out", "o", "", "run directory for checkpoint.bin, log.csv and loss.png")
	f.StringVar(&resume, "resume", "", "continue the run in this directory (or checkpoint file)")
	f.IntVar(&o.Steps, "steps", o.Steps, "total optimizer steps (with --resume: a new total; past the old one, the cosine is stretched to it unless --decay-steps was set)")
	f.IntVar(&o.BatchSize, "batch-size", o.BatchSize, "sequences per micro-batch")
	f.IntVar(&o.SeqLen, "seq-len", 0, "sequence length (0: the model's context)")
	f.IntVar(&o.BatchTokens, "batch-tokens", 0, "tokens per optimizer step, reached by gradient accumulation (0: one micro-batch)")
	f.Float64Var(&o.LR, "lr", o.LR, "peak learning rate")
	f.Float64Var(&o.MinLR, "min-lr", o.MinLR, "learning rate floor of the cosine decay")
	f.IntVar(&o.WarmupSteps, "warmup", o.WarmupSteps, "linear warmup steps")
	f.IntVar(&o.DecaySteps, "decay-steps", 0, "step at which the cosine reaches --min-lr (0: --steps)")
	f.Float64Var(&o.WeightDecay, "weight-decay", o.WeightDecay, "AdamW weight decay on matrices")
	f.Float64Var(&o.GradClip, "grad-clip", o.GradClip, "clip the global gradient norm to this (0: off)")
	f.IntVar(&o.ValEvery, "val-every", o.ValEvery, "evaluate the validation loss every N steps (0: never, and nothing is held out)")
	f.IntVar(&o.ValBatches, "val-batches", o.ValBatches, "batches per validation")
	f.Float64Var(&valFraction, "val-fraction", 0.01, "fraction of the data held out for validation (shard data): whole documents, or chunks of them when a source has too few")
	f.IntVar(&o.CheckpointEvery, "checkpoint-every", o.CheckpointEvery, "write a checkpoint every N steps (0: only at the end)")
	f.IntVar(&o.KeepCheckpoints, "keep-checkpoints", 0, "keep the last N checkpoints as checkpoint-STEP.bin too (0: only the latest, checkpoint.bin)")
	f.StringArrayVar(&evalFlags, "eval", nil, "score NAME=DATA[,DATA...] (held-out text, JSONL, document or token shards; see smelt eval) every --eval-every steps, into log.csv and loss.png (repeatable)")
	f.IntVar(&o.EvalEvery, "eval-every", 0, "score the --eval sets every N steps and at the end (0: --val-every)")
	f.IntVar(&o.EvalStride, "eval-stride", 0, "stride of the windows validation and --eval score long documents in (0: half the context)")
	f.Int64Var(&o.ValTokens, "val-tokens", 0, "held-out tokens validation scores per source (0: --val-batches x --batch-size x --seq-len)")
	f.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the initial weights and the loader's shuffle")
	f.IntVarP(&threads, "threads", "j", 0, "threads for the math (0: all cores); -j as on every verb")
	return cmd
}

// resumeCommand, when set, is what main's interrupt message tells the user
// to run to resume (instead of running the same command again); main reads
// it from its signal goroutine.
var resumeCommand atomic.Pointer[string]

func runTraining(cmd *cobra.Command, tr *trainer.Trainer, d *trainData) error {
	o := tr.Options()
	w := cmd.ErrOrStderr()
	c := tr.Model.Config
	fmt.Fprintf(w, "smelt train: %d layers, %d heads, width %d, context %d, vocab %d (%.2fM params) on %s\n",
		c.Layers, c.Heads, c.Width, c.Context, c.Vocab, float64(c.NumParams())/1e6, d.desc)
	if l, ok := d.train.(*shards.Loader); ok {
		passes, err := l.Passes(int64(o.Steps) * int64(o.BatchTokens/(o.BatchSize*o.SeqLen)))
		if err != nil {
			return err
		}
		trainer.LogPasses(passes)
	}
	fmt.Fprintf(w, "memory: %.2f GiB of activations for %d x %d, %.2f GiB of parameters, gradients and AdamW moments\n",
		float64(c.ActivationBytes(o.BatchSize, o.SeqLen))/(1<<30), o.BatchSize, o.SeqLen, float64(16*c.NumParams())/(1<<30))
	fmt.Fprintf(w, "kernel: %s; sgemm peak %.1f GFLOP/s (MFU's peak, raised by any faster step); %d tokens/step (%d x %d x %d accumulation)\n",
		tr.Model.Backend().Name(), o.PeakFLOPS/1e9, o.BatchTokens, o.BatchSize, o.SeqLen, o.BatchTokens/(o.BatchSize*o.SeqLen))
	tr.OnStep = func(r trainer.Record) {
		val := ""
		if !math.IsNaN(r.ValLoss) {
			val = fmt.Sprintf(" | val %.4f", r.ValLoss)
		}
		for _, s := range o.Eval {
			if v, ok := r.Evals["eval/"+s.Name]; ok {
				val += fmt.Sprintf(" | %s %.4f (%.3f bpb)", s.Name, v, r.Evals["eval/"+s.Name+"/bpb"])
			}
		}
		fmt.Fprintf(w, "step %6d/%d | loss %.4f%s | lr %.2e | norm %.3f | %.0f tok/s | MFU %.1f%%\n",
			r.Step, o.Steps, r.Loss, val, r.LR, r.GradNorm, r.TokensPerS, 100*r.MFU)
	}
	hint := "smelt train --resume " + o.OutDir
	resumeCommand.Store(&hint)
	defer resumeCommand.Store(nil)
	if err := tr.Run(cmd.Context()); err != nil {
		if cmd.Context().Err() != nil {
			return fmt.Errorf("training stopped at step %d, checkpoint written: resume with: smelt train --resume %s (%w)", tr.Step(), o.OutDir, err)
		}
		return err
	}
	if sc := tr.Scores(); len(sc) > 0 {
		fmt.Fprintln(w, "scores at the last step (nats/token, bits/byte):")
		for _, r := range withoutLoneSources(sc) {
			name := r.Set
			if r.Source != "" {
				name += "/" + r.Source
			}
			fmt.Fprintf(w, "  %-24s %.4f  %.4f  (%d tokens)\n", name, r.LossNats, r.BitsPerByte, r.Tokens)
		}
	}
	fmt.Fprintf(w, "done: %s\n", filepath.Join(o.OutDir, trainer.CheckpointFile))
	return nil
}

// absData makes the path in a --data spec absolute, for the checkpoint to
// record: a mix file, a shard directory or text:FILE.
func absData(spec string) (string, error) {
	switch {
	case strings.HasPrefix(spec, "synthetic:"):
		return spec, nil
	case strings.HasPrefix(spec, "text:"):
		p, err := filepath.Abs(strings.TrimPrefix(spec, "text:"))
		return "text:" + p, err
	}
	return filepath.Abs(spec)
}
