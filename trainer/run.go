package trainer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/tokenize"
)

// TrainConfig is a whole training run on token shards, for Go callers
// (ablation arms, mixture search): smelt train's work without the CLI.
type TrainConfig struct {
	// Data is a mix file or a token-shard directory.
	Data string
	// Model is a preset (tiny, small, gpt2-124m) or a YAML file; "" is tiny.
	Model string
	// Options are the loop's settings; OutDir is required, Seed seeds the
	// weights and the loader. SeqLen 0 is the model's context. Data and
	// ValFraction are filled in.
	Options Options
	// Tokens, when > 0, sets Options.Steps to the fewest steps that train
	// on at least this many tokens (BatchTokens each).
	Tokens int64
	// ValFraction is held out for validation when Options.ValEvery > 0.
	ValFraction float64
	// Tokenizer is the tokenizer file or built-in name to embed in the
	// checkpoint ("": the shards' tokenizer when it is built in), which
	// text eval sets need.
	Tokenizer string
	// Threads for the math (0: GOMAXPROCS).
	Threads int
	// OnStep, when set, is called after every step.
	OnStep func(Record)
}

// TrainResult is what a run did.
type TrainResult struct {
	Dir   string
	Steps int
	// Tokens is the number of tokens trained on (Steps x BatchTokens).
	Tokens int64
	// Passes is, per source, the rows drawn and the passes over its
	// training data (see shards.Loader.Passes).
	Passes []shards.SourcePasses
	// Scores are the last validation and eval-set rows (Trainer.Scores).
	Scores  []EvalResult
	History []Record
}

// Train trains a model on c.Data as smelt train does, resuming from
// c.Options.OutDir's checkpoint when there is one, and returns what it
// did. It warns (slog) when a source would be repeated more than
// shards.RepeatWarnEpochs times.
func Train(ctx context.Context, c TrainConfig) (*TrainResult, error) {
	o := c.Options
	if o.OutDir == "" {
		return nil, errors.New("trainer: Train needs Options.OutDir")
	}
	mix, err := OpenMixData(c.Data)
	if err != nil {
		return nil, err
	}
	model := c.Model
	if model == "" {
		model = "tiny"
	}
	cfg, err := ResolveConfig(model, mix.VocabSize())
	if err != nil {
		return nil, err
	}
	if o.SeqLen == 0 {
		o.SeqLen = cfg.Context
	}
	if c.Tokens > 0 {
		bt := int64(o.BatchTokens)
		if bt == 0 {
			bt = int64(o.BatchSize) * int64(o.SeqLen)
		}
		if bt <= 0 {
			return nil, fmt.Errorf("trainer: batch size %d x seq len %d", o.BatchSize, o.SeqLen)
		}
		o.Steps = int((c.Tokens + bt - 1) / bt)
	}
	lo := shards.LoaderOptions{SeqLen: o.SeqLen, BatchSize: o.BatchSize, Seed: o.Seed}
	if o.ValEvery > 0 {
		lo.ValFraction = c.ValFraction
	}
	resume := false
	if _, err := os.Stat(filepath.Join(o.OutDir, CheckpointFile)); err == nil {
		ck, err := LoadCheckpoint(filepath.Join(o.OutDir, CheckpointFile))
		if err != nil {
			return nil, err
		}
		lo = shards.LoaderOptions{SeqLen: ck.Options.SeqLen, BatchSize: ck.Options.BatchSize, Seed: ck.Options.Seed, ValFraction: ck.Options.ValFraction}
		resume = true
	}
	tl, vl, err := shards.OpenTraining(mix, lo)
	if err != nil {
		return nil, err
	}
	var val Batcher
	if vl != nil {
		val = vl
	} else {
		o.ValEvery = 0
	}
	o.ValFraction = tl.Options().ValFraction
	if o.Data, err = filepath.Abs(c.Data); err != nil {
		return nil, err
	}
	info, err := MixDataInfo(mix, c.Tokenizer)
	if err != nil {
		return nil, err
	}
	be := NewCPU(c.Threads)
	var t *Trainer
	if resume {
		if t, err = Resume(o.OutDir, be, o.Steps, o.OutDir, 0, info, tl, val); err != nil {
			return nil, err
		}
	} else if t, err = New(cfg, be, o, info, tl, val); err != nil {
		return nil, err
	}
	ro := t.Options()
	passes, err := tl.Passes(int64(ro.Steps) * int64(ro.BatchTokens/(ro.BatchSize*ro.SeqLen)))
	if err != nil {
		return nil, err
	}
	LogPasses(passes)
	t.OnStep = c.OnStep
	if t.Step() < ro.Steps {
		if err := t.Run(ctx); err != nil {
			return nil, err
		}
	}
	return &TrainResult{Dir: o.OutDir, Steps: t.Step(), Tokens: int64(t.Step()) * int64(ro.BatchTokens), Passes: passes,
		Scores: t.Scores(), History: t.History()}, nil
}

// OpenMixData opens a mix file or a token-shard directory.
func OpenMixData(path string) (*shards.Mix, error) {
	var mix *shards.Mix
	var err error
	if isDir(path) {
		mix, err = shards.OpenMixDir(path)
	} else {
		mix, err = shards.LoadMix(path)
	}
	if err != nil {
		return nil, fmt.Errorf("trainer: data %s: %w", path, err)
	}
	return mix, nil
}

// MixDataInfo describes mix's tokens for a run, embedding the tokenizer
// named by tokPath (a file or built-in name; "": the shards' tokenizer
// name when it is built in or a readable file) after checking that its
// ranks are the shards'.
func MixDataInfo(mix *shards.Mix, tokPath string) (DataInfo, error) {
	ti := mix.TokenizerInfo()
	info := DataInfo{Vocab: mix.VocabSize(), Tokenizer: ti.Name, EOT: ti.EOT, TokenizerHash: ti.RanksHash}
	if tokPath == "" {
		tokPath = ti.Name
		if !tokenize.IsBuiltin(tokPath) {
			if _, err := os.Stat(tokPath); err != nil {
				slog.Warn("the checkpoint will not embed the tokenizer, so text cannot be scored or generated from it: name the tokenizer file",
					"tokenizer", ti.Name)
				return info, nil
			}
		}
	}
	tok, err := tokenize.GetOrLoad(tokPath)
	if err != nil {
		return info, fmt.Errorf("trainer: tokenizer: %w", err)
	}
	hash, file, data, err := TokenizerInfo(tok, tokPath)
	if err != nil {
		return info, err
	}
	if hash != ti.RanksHash {
		return info, fmt.Errorf("trainer: tokenizer %s has ranks hash %s, but the shards were tokenized with %q (ranks hash %s)", tokPath, hash, ti.Name, ti.RanksHash)
	}
	info.TokenizerFile, info.TokenizerData = file, data
	return info, nil
}

// LogPasses logs the passes over each source and warns about any repeated
// more than shards.RepeatWarnEpochs times (Muennighoff et al. 2023: past
// about 4 epochs repeated tokens are worth much less than new ones).
func LogPasses(passes []shards.SourcePasses) {
	for _, p := range passes {
		args := []any{"source", p.Name, "tokens", shards.FormatTokens(p.Tokens), "passes", fmt.Sprintf("%.2f", p.Passes)}
		if p.Passes > shards.RepeatWarnEpochs {
			slog.Warn(fmt.Sprintf("train: source repeated more than %.0f times: beyond about 4 epochs repeated tokens are worth much less than new ones (Muennighoff et al. 2023); lower its weight, add data or train fewer steps", shards.RepeatWarnEpochs), args...)
		} else {
			slog.Info("train: passes over the data", args...)
		}
	}
}
