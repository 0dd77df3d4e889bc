package trainer

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Options are the training loop's settings. Zero values are filled by
// DefaultOptions' values where noted.
type Options struct {
	// BatchSize is the number of sequences per micro-batch; SeqLen their
	// length (at most the model's context).
	BatchSize int `json:"batch_size"`
	SeqLen    int `json:"seq_len"`
	// BatchTokens is the number of tokens per optimizer step, a multiple of
	// BatchSize*SeqLen reached by gradient accumulation (0: one micro-batch).
	BatchTokens int `json:"batch_tokens"`
	// Steps is the number of optimizer steps to run in total.
	Steps int `json:"steps"`
	// LR is the peak learning rate, reached after WarmupSteps; it then
	// follows a cosine to MinLR at DecaySteps (0: Steps, so that a run
	// resumed with more steps stretches its cosine to the new end).
	LR          float64 `json:"lr"`
	MinLR       float64 `json:"min_lr"`
	WarmupSteps int     `json:"warmup_steps"`
	DecaySteps  int     `json:"decay_steps"`
	// WeightDecay is AdamW's decoupled decay on matrices; GradClip the
	// maximum global gradient norm (0: no clipping).
	WeightDecay float64 `json:"weight_decay"`
	GradClip    float64 `json:"grad_clip"`
	// ValEvery evaluates ValBatches batches of the validation Batcher every
	// that many steps and at the end (0: never).
	ValEvery   int `json:"val_every"`
	ValBatches int `json:"val_batches"`
	// CheckpointEvery writes OutDir/checkpoint.bin every that many steps
	// and at the end (0: only at the end).
	CheckpointEvery int `json:"checkpoint_every"`
	// KeepCheckpoints keeps the last N checkpoints as step-numbered copies
	// (checkpoint-00001000.bin) beside checkpoint.bin (0: none).
	KeepCheckpoints int `json:"keep_checkpoints,omitempty"`
	// Eval are fixed evaluation sets scored as Evaluate scores them, every
	// EvalEvery steps and at the end (EvalEvery 0: ValEvery; both 0: at
	// the end only); log.csv gets columns eval/NAME (nats per token) and
	// eval/NAME/bpb (bits per byte). Their data is read once, at start.
	Eval      []EvalSet `json:"eval,omitempty"`
	EvalEvery int       `json:"eval_every,omitempty"`
	// EvalStride is the scoring stride (0: half the context, see
	// EvalOptions).
	EvalStride int `json:"eval_stride,omitempty"`
	// ValTokens caps the held-out tokens validation scores per source
	// (0: ValBatches x BatchSize x SeqLen).
	ValTokens int64 `json:"val_tokens,omitempty"`
	// Seed draws the initial weights (and seeds the caller's loader).
	Seed uint64 `json:"seed"`
	// ValFraction records the data's held-out fraction (0 when nothing was
	// held out) so that a resumed run opens its loaders with the same
	// split; Data records the data the run trained on (a mix file or shard
	// directory) so that it can resume without being told. The loop reads
	// neither.
	ValFraction float64 `json:"val_fraction"`
	Data        string  `json:"data,omitempty"`
	// OutDir is the run directory: checkpoint, log.csv, loss.png.
	OutDir string `json:"-"`
	// PeakFLOPS is the peak MFU is measured against, in FLOP/s (0:
	// measured at start with the backend's kernel: the best of a few
	// 512^3 sgemm timings). A step whose model FLOP/s beat it raises it,
	// so that MFU never exceeds 100%: one short sgemm timing on a busy
	// machine can be slower than the kernel's real peak.
	PeakFLOPS float64 `json:"-"`
}

// DefaultOptions are nanoGPT-like settings for small models on CPU.
func DefaultOptions() Options {
	return Options{
		BatchSize: 8, SeqLen: 256, Steps: 1000, LR: 6e-4, MinLR: 6e-5, WarmupSteps: 100,
		WeightDecay: 0.1, GradClip: 1.0, ValEvery: 100, ValBatches: 10, CheckpointEvery: 500, Seed: 1337,
	}
}

// DataInfo describes the token data a run trains on.
type DataInfo struct {
	Vocab     int
	Tokenizer string
	EOT       uint32
	// TokenizerHash identifies the tokenizer's ranks (shards'
	// TokenizerInfo.RanksHash); a resumed run must have the same.
	TokenizerHash string
	// TokenizerFile and TokenizerData are the tokenizer's file name and
	// bytes, embedded in checkpoints so that generate and resume need no
	// file (empty for built-in encodings, which need none).
	TokenizerFile string
	TokenizerData []byte
}

// Record is one step's line of the CSV log.
type Record struct {
	Step       int
	Loss       float64
	ValLoss    float64 // NaN when not evaluated at this step
	LR         float64
	GradNorm   float64
	TokensPerS float64
	MFU        float64 // fraction of PeakFLOPS, at most 1
	ElapsedS   float64
	// Evals holds the scores of this step's evaluations by log.csv column:
	// val/SOURCE (validation loss per source), eval/NAME and
	// eval/NAME/bpb. Nil when nothing was scored.
	Evals map[string]float64
}

// Trainer runs the training loop for one model.
type Trainer struct {
	Model *Model
	Opt   *AdamW
	// OnStep, when set, is called after every step (the CLI prints the
	// live line from it).
	OnStep func(Record)

	opts     Options
	data     DataInfo
	train    Batcher
	val      Batcher
	valStart []byte
	step     int
	rng      *rand.PCG
	accum    int
	buf      []uint32
	in, tgt  []uint32
	history  []Record
	elapsed  float64

	ev       *evaluator
	valSet   *EvalSet  // the held-out split, scored by ev
	valDocs  []evalDoc // its documents
	evalDocs [][]evalDoc
	evalCols []string // log.csv's score columns
	lastVal  []EvalResult
	lastEval []EvalResult
}

func (o *Options) resolve(cfg Config) error {
	if o.BatchSize <= 0 || o.SeqLen <= 0 {
		return fmt.Errorf("trainer: batch size %d and sequence length %d must be > 0", o.BatchSize, o.SeqLen)
	}
	if o.SeqLen > cfg.Context {
		return fmt.Errorf("trainer: sequence length %d exceeds the model context %d", o.SeqLen, cfg.Context)
	}
	micro := o.BatchSize * o.SeqLen
	if o.BatchTokens == 0 {
		o.BatchTokens = micro
	}
	if o.BatchTokens%micro != 0 {
		return fmt.Errorf("trainer: batch tokens %d is not a multiple of batch size x sequence length = %d", o.BatchTokens, micro)
	}
	if o.Steps <= 0 {
		return fmt.Errorf("trainer: steps must be > 0, got %d", o.Steps)
	}
	if o.DecaySteps < 0 {
		return fmt.Errorf("trainer: decay steps %d must not be negative", o.DecaySteps)
	}
	if o.LR <= 0 || o.MinLR < 0 || o.MinLR > o.LR {
		return fmt.Errorf("trainer: need 0 <= min lr %g <= lr %g, lr > 0", o.MinLR, o.LR)
	}
	if o.ValEvery > 0 && o.ValBatches <= 0 {
		o.ValBatches = 1
	}
	return nil
}

// Decay is the step at which the cosine reaches MinLR: DecaySteps, or
// Steps when that is 0.
func (o Options) Decay() int {
	if o.DecaySteps > 0 {
		return o.DecaySteps
	}
	return o.Steps
}

// New starts a run from freshly initialised weights.
func New(cfg Config, be Backend, opts Options, data DataInfo, train, val Batcher) (*Trainer, error) {
	if data.Vocab != 0 && cfg.Vocab != data.Vocab {
		return nil, fmt.Errorf("trainer: model vocabulary %d does not match the data's %d", cfg.Vocab, data.Vocab)
	}
	if err := opts.resolve(cfg); err != nil {
		return nil, err
	}
	m, err := NewModel(cfg, be, opts.Seed, opts.BatchSize, opts.SeqLen)
	if err != nil {
		return nil, err
	}
	t := &Trainer{Model: m, Opt: NewAdamW(cfg), opts: opts, data: data, train: train, val: val,
		rng: rand.NewPCG(opts.Seed, 0x7a11)}
	t.Opt.WeightDecay = float32(opts.WeightDecay)
	return t, t.init()
}

// Resume continues the run whose checkpoint is at path (a file or a run
// directory). The model, optimizer, step, schedule and loader position come
// from the checkpoint; steps may change the total step count (0: keep), and
// outDir, peak and the batchers come from the caller. The loss sequence that
// follows is bit-identical to the uninterrupted run's with the same worker
// count and total steps.
//
// A run whose cosine followed its step count (DecaySteps 0) and is resumed
// with more steps has its cosine stretched to the new end, so the extra
// steps are not all trained at MinLR; the learning rate then rises at the
// resumed step, which Resume logs. With DecaySteps set, the steps past it
// run at MinLR, which it logs too.
func Resume(path string, be Backend, steps int, outDir string, peak float64, data DataInfo, train, val Batcher) (*Trainer, error) {
	path = ResolveCheckpoint(path)
	ck, err := LoadCheckpoint(path)
	if err != nil {
		return nil, err
	}
	if data.Vocab != 0 && ck.Config.Vocab != data.Vocab {
		return nil, fmt.Errorf("trainer: checkpoint %s has vocabulary %d but the data has %d", path, ck.Config.Vocab, data.Vocab)
	}
	switch {
	case data.TokenizerHash != "" && ck.TokenizerHash != "":
		if data.TokenizerHash != ck.TokenizerHash {
			return nil, fmt.Errorf("trainer: checkpoint %s was trained with tokenizer %q (ranks hash %s) but the data uses %q (ranks hash %s)",
				path, ck.Tokenizer, ck.TokenizerHash, data.Tokenizer, data.TokenizerHash)
		}
	case data.Tokenizer != "" && ck.Tokenizer != "" && data.Tokenizer != ck.Tokenizer:
		return nil, fmt.Errorf("trainer: checkpoint %s was trained with tokenizer %q but the data uses %q", path, ck.Tokenizer, data.Tokenizer)
	}
	if data.TokenizerData == nil && ck.TokenizerData != nil {
		// Keep embedding the tokenizer the run started with.
		data.TokenizerFile, data.TokenizerData = ck.TokenizerFile, ck.TokenizerData
	}
	if data.TokenizerHash == "" {
		data.TokenizerHash = ck.TokenizerHash
	}
	if ck.M == nil {
		return nil, fmt.Errorf("trainer: checkpoint %s has no optimizer state to resume from", path)
	}
	opts := ck.Options
	if steps > 0 {
		opts.Steps = steps
	}
	opts.OutDir, opts.PeakFLOPS = outDir, peak
	if opts.Steps > ck.Options.Steps {
		old := Schedule{MaxLR: opts.LR, MinLR: opts.MinLR, Warmup: opts.WarmupSteps, Decay: ck.Options.Decay()}
		if opts.DecaySteps == 0 {
			now := Schedule{MaxLR: opts.LR, MinLR: opts.MinLR, Warmup: opts.WarmupSteps, Decay: opts.Decay()}
			slog.Info("trainer: schedule extended: the cosine now reaches min_lr at the new last step",
				"steps_before", ck.Options.Steps, "steps", opts.Steps, "step", ck.Step,
				"lr_before", fmt.Sprintf("%.3g", old.LR(ck.Step)), "lr_now", fmt.Sprintf("%.3g", now.LR(ck.Step)))
		} else if opts.Steps > opts.DecaySteps {
			slog.Warn("trainer: steps past decay_steps run at min_lr", "decay_steps", opts.DecaySteps, "steps", opts.Steps, "min_lr", opts.MinLR)
		}
	}
	if err := opts.resolve(ck.Config); err != nil {
		return nil, err
	}
	m, err := NewModel(ck.Config, be, opts.Seed, opts.BatchSize, opts.SeqLen)
	if err != nil {
		return nil, err
	}
	copy(m.Params.Flat, ck.Params)
	opt := NewAdamW(ck.Config)
	opt.WeightDecay = float32(opts.WeightDecay)
	copy(opt.M.Flat, ck.M)
	copy(opt.V.Flat, ck.V)
	opt.T = ck.AdamT
	rng := rand.NewPCG(0, 0)
	if err := rng.UnmarshalBinary(ck.RNG); err != nil {
		return nil, fmt.Errorf("trainer: checkpoint %s RNG state: %w", path, err)
	}
	if err := train.Restore(ck.LoaderState); err != nil {
		// The loader's errors say "loader state: ...".
		return nil, fmt.Errorf("trainer: checkpoint %s: %w", path, err)
	}
	if data.Tokenizer == "" {
		data.Tokenizer, data.EOT = ck.Tokenizer, ck.EOT
	}
	t := &Trainer{Model: m, Opt: opt, opts: opts, data: data, train: train, val: val, step: ck.Step, rng: rng}
	if err := t.init(); err != nil {
		return nil, err
	}
	return t, t.loadHistory()
}

func (t *Trainer) init() error {
	o := t.opts
	t.accum = o.BatchTokens / (o.BatchSize * o.SeqLen)
	t.buf = make([]uint32, o.BatchSize*(o.SeqLen+1))
	t.in = make([]uint32, o.BatchSize*o.SeqLen)
	t.tgt = make([]uint32, o.BatchSize*o.SeqLen)
	if t.val != nil {
		s, err := t.val.State()
		if err != nil {
			return fmt.Errorf("trainer: validation loader state: %w", err)
		}
		t.valStart = s
	}
	if o.OutDir != "" {
		if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
			return fmt.Errorf("trainer: run directory: %w", err)
		}
		// Temporary files of a run that crashed between write and rename.
		stale, _ := filepath.Glob(filepath.Join(o.OutDir, ".*.tmp-*"))
		for _, f := range stale {
			os.Remove(f)
		}
	}
	if t.opts.PeakFLOPS == 0 {
		t.opts.PeakFLOPS = MeasurePeak(t.Model.be, 512)
	}
	return t.initEval()
}

// Step is the number of optimizer steps completed.
func (t *Trainer) Step() int { return t.step }

// Options are the resolved options of the run.
func (t *Trainer) Options() Options { return t.opts }

// History is the log so far (including rows kept from before a resume).
func (t *Trainer) History() []Record { return t.history }

// nextBatch reads one micro-batch and splits it into inputs and targets.
func (t *Trainer) nextBatch(b Batcher, what string) error {
	if err := b.Next(t.buf); err != nil {
		return fmt.Errorf("trainer: %s batch at step %d: %w", what, t.step, err)
	}
	B, T := t.opts.BatchSize, t.opts.SeqLen
	for i := range B {
		copy(t.in[i*T:(i+1)*T], t.buf[i*(T+1):i*(T+1)+T])
		copy(t.tgt[i*T:(i+1)*T], t.buf[i*(T+1)+1:(i+1)*(T+1)])
	}
	return nil
}

// ErrNonFinite is returned (wrapped) when the loss or the gradient norm is
// NaN or infinite; the step is not applied and no checkpoint is written.
var ErrNonFinite = errors.New("non-finite loss or gradient")

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// TrainStep runs one optimizer step (forward, backward over the
// accumulation micro-batches, clip, update) and returns its record.
func (t *Trainer) TrainStep() (Record, error) {
	o := t.opts
	start := time.Now()
	m := t.Model
	m.ZeroGrad()
	var lossSum float64
	for range t.accum {
		if err := t.nextBatch(t.train, "training"); err != nil {
			return Record{}, err
		}
		loss, err := m.Forward(t.in, t.tgt, o.BatchSize, o.SeqLen)
		if err != nil {
			return Record{}, fmt.Errorf("trainer: step %d: %w", t.step+1, err)
		}
		if !finite(float64(loss)) {
			return Record{}, fmt.Errorf("trainer: step %d: loss is %v: %w", t.step+1, loss, ErrNonFinite)
		}
		lossSum += float64(loss)
		if err := m.Backward(1 / float32(t.accum)); err != nil {
			return Record{}, err
		}
	}
	norm := clipGrads(m.Grads.Flat, o.GradClip, runtime.GOMAXPROCS(0))
	if !finite(norm) {
		return Record{}, fmt.Errorf("trainer: step %d: gradient norm is %v: %w", t.step+1, norm, ErrNonFinite)
	}
	lr := Schedule{MaxLR: o.LR, MinLR: o.MinLR, Warmup: o.WarmupSteps, Decay: o.Decay()}.LR(t.step)
	t.Opt.Step(m.be, m.Params, m.Grads, float32(lr))
	t.step++
	dt := time.Since(start).Seconds()
	t.elapsed += dt
	tps := float64(o.BatchTokens) / dt
	flops := tps * m.Config.FlopsPerToken(o.SeqLen)
	if flops > t.opts.PeakFLOPS || !(t.opts.PeakFLOPS > 0) {
		slog.Debug("trainer: a step beat the measured peak; MFU is now against it", "step", t.step,
			"peak_gflops", fmt.Sprintf("%.2f", t.opts.PeakFLOPS/1e9), "step_gflops", fmt.Sprintf("%.2f", flops/1e9))
		t.opts.PeakFLOPS = flops
	}
	return Record{
		Step: t.step, Loss: lossSum / float64(t.accum), ValLoss: math.NaN(), LR: lr, GradNorm: norm,
		TokensPerS: tps, MFU: flops / t.opts.PeakFLOPS, ElapsedS: t.elapsed,
	}, nil
}

// ValLoss is the validation loss: for token data held out by the loader
// (Options.Data and ValFraction set), the held-out split scored as
// Evaluate scores it (HeldOutSet); otherwise the mean loss over the first
// ValBatches batches of the validation Batcher (the same batches every
// time).
func (t *Trainer) ValLoss() (float64, error) {
	if t.valSet != nil {
		rows, err := t.ev.scoreSet(context.Background(), *t.valSet, t.valDocs)
		if err != nil {
			return 0, err
		}
		t.lastVal = rows
		return rows[0].LossNats, nil
	}
	if t.val == nil {
		return math.NaN(), nil
	}
	if err := t.val.Restore(t.valStart); err != nil {
		return 0, fmt.Errorf("trainer: rewind validation loader: %w", err)
	}
	var s float64
	n := max(1, t.opts.ValBatches)
	for range n {
		if err := t.nextBatch(t.val, "validation"); err != nil {
			return 0, err
		}
		loss, err := t.Model.Forward(t.in, t.tgt, t.opts.BatchSize, t.opts.SeqLen)
		if err != nil {
			return 0, fmt.Errorf("trainer: validation: %w", err)
		}
		s += float64(loss)
	}
	return s / float64(n), nil
}

// Run trains until Steps steps are done or ctx is cancelled, logging each
// step to OutDir/log.csv, evaluating, checkpointing and drawing
// OutDir/loss.png as configured. On cancellation it writes a checkpoint of
// the last completed step and returns ctx's error.
func (t *Trainer) Run(ctx context.Context) error {
	o := t.opts
	var logw *csvLog
	if o.OutDir != "" {
		var err error
		if logw, err = openCSVLog(filepath.Join(o.OutDir, "log.csv"), t.evalCols, t.history); err != nil {
			return err
		}
		defer logw.Close()
	}
	logKernel(t.Model.be)
	slog.Debug("training", "params", t.Model.Config.NumParams(),
		"step", t.step, "steps", o.Steps, "batch_tokens", o.BatchTokens, "accum", t.accum,
		"peak_gflops", fmt.Sprintf("%.1f", o.PeakFLOPS/1e9))
	evalEvery := o.EvalEvery
	if evalEvery == 0 {
		evalEvery = o.ValEvery
	}
	for t.step < o.Steps {
		if err := ctx.Err(); err != nil {
			if o.OutDir != "" {
				if cerr := t.SaveCheckpoint(); cerr != nil {
					return errors.Join(err, cerr)
				}
			}
			return err
		}
		rec, err := t.TrainStep()
		if err != nil {
			return err
		}
		last := t.step == o.Steps
		if o.ValEvery > 0 && (t.step%o.ValEvery == 0 || last) {
			if rec.ValLoss, err = t.ValLoss(); err != nil {
				return err
			}
			if t.valSet != nil && len(t.lastVal) > 1 {
				rec.Evals = map[string]float64{}
				for _, r := range t.lastVal[1:] {
					rec.Evals["val/"+r.Source] = r.LossNats
				}
			}
		}
		if len(t.evalDocs) > 0 && (last || (evalEvery > 0 && t.step%evalEvery == 0)) {
			if rec.Evals == nil {
				rec.Evals = map[string]float64{}
			}
			if err := t.scoreEvals(ctx, rec.Evals); err != nil {
				return err
			}
		}
		t.history = append(t.history, rec)
		if logw != nil {
			if err := logw.Write(rec); err != nil {
				return err
			}
		}
		if t.OnStep != nil {
			t.OnStep(rec)
		}
		if o.OutDir != "" && ((o.CheckpointEvery > 0 && t.step%o.CheckpointEvery == 0) || last) {
			if err := t.SaveCheckpoint(); err != nil {
				return err
			}
			if err := t.keepCheckpoint(); err != nil {
				return err
			}
			if err := PlotLoss(filepath.Join(o.OutDir, "loss.png"), t.history); err != nil {
				return err
			}
		}
	}
	return nil
}

// SaveCheckpoint writes OutDir/checkpoint.bin for the current step.
func (t *Trainer) SaveCheckpoint() error {
	ls, err := t.train.State()
	if err != nil {
		return fmt.Errorf("trainer: loader state: %w", err)
	}
	rng, err := t.rng.MarshalBinary()
	if err != nil {
		return err
	}
	ck := &Checkpoint{
		Config: t.Model.Config, Step: t.step, Tokenizer: t.data.Tokenizer, EOT: t.data.EOT,
		TokenizerHash: t.data.TokenizerHash, TokenizerFile: t.data.TokenizerFile, TokenizerData: t.data.TokenizerData,
		LoaderState: ls, RNG: rng, Options: t.opts, AdamT: t.Opt.T,
		Params: t.Model.Params.Flat, M: t.Opt.M.Flat, V: t.Opt.V.Flat,
	}
	path := filepath.Join(t.opts.OutDir, CheckpointFile)
	if err := SaveCheckpoint(path, ck); err != nil {
		return err
	}
	slog.Debug("checkpoint written", "path", path, "step", t.step)
	return nil
}

// csvHeader are the columns of log.csv.
var csvHeader = []string{"step", "loss", "val_loss", "lr", "grad_norm", "tokens_per_s", "mfu", "elapsed_s"}

type csvLog struct {
	f    *os.File
	w    *csv.Writer
	cols []string
}

// openCSVLog rewrites path atomically with the kept rows, then appends.
func openCSVLog(path string, cols []string, keep []Record) (*csvLog, error) {
	err := writeAtomic(path, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write(append(append([]string(nil), csvHeader...), cols...))
		for _, r := range keep {
			cw.Write(r.fields(cols))
		}
		cw.Flush()
		return cw.Error()
	})
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("trainer: open log: %w", err)
	}
	return &csvLog{f: f, w: csv.NewWriter(f), cols: cols}, nil
}

// fields are r's log.csv cells; cols name the score columns after the
// fixed ones (empty where r has no score).
func (r Record) fields(cols []string) []string {
	f := func(x float64) string {
		if math.IsNaN(x) {
			return ""
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	out := []string{strconv.Itoa(r.Step), f(r.Loss), f(r.ValLoss), f(r.LR), f(r.GradNorm), f(r.TokensPerS), f(r.MFU), f(r.ElapsedS)}
	for _, c := range cols {
		v, ok := r.Evals[c]
		if !ok {
			v = math.NaN()
		}
		out = append(out, f(v))
	}
	return out
}

func (l *csvLog) Write(r Record) error {
	l.w.Write(r.fields(l.cols))
	l.w.Flush()
	if err := l.w.Error(); err != nil {
		return fmt.Errorf("trainer: write log: %w", err)
	}
	return nil
}

func (l *csvLog) Close() error { return l.f.Close() }

// ReadLog parses a log.csv written by Run: the fixed columns, and any
// score columns after them into Record.Evals.
func ReadLog(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(bufio.NewReader(f)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("trainer: %s: %w", path, err)
	}
	var out []Record
	var cols []string
	for i, row := range rows {
		if i == 0 {
			if len(row) < len(csvHeader) || strings.Join(row[:len(csvHeader)], ",") != strings.Join(csvHeader, ",") {
				return nil, fmt.Errorf("trainer: %s: header %q does not start with %q", path, strings.Join(row, ","), strings.Join(csvHeader, ","))
			}
			cols = row[len(csvHeader):]
			continue
		}
		if len(row) != len(csvHeader)+len(cols) {
			return nil, fmt.Errorf("trainer: %s line %d: %d fields, want %d", path, i+1, len(row), len(csvHeader)+len(cols))
		}
		var evals map[string]float64
		for j, c := range cols {
			s := row[len(csvHeader)+j]
			if s == "" {
				continue
			}
			x, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, fmt.Errorf("trainer: %s line %d column %s: %w", path, i+1, c, err)
			}
			if evals == nil {
				evals = map[string]float64{}
			}
			evals[c] = x
		}
		var v [8]float64
		for j, s := range row[:len(csvHeader)] {
			if s == "" {
				v[j] = math.NaN()
				continue
			}
			if v[j], err = strconv.ParseFloat(s, 64); err != nil {
				return nil, fmt.Errorf("trainer: %s line %d column %s: %w", path, i+1, csvHeader[j], err)
			}
		}
		out = append(out, Record{Step: int(v[0]), Loss: v[1], ValLoss: v[2], LR: v[3], GradNorm: v[4], TokensPerS: v[5], MFU: v[6], ElapsedS: v[7], Evals: evals})
	}
	return out, nil
}

// loadHistory keeps the log rows up to the resumed step.
func (t *Trainer) loadHistory() error {
	if t.opts.OutDir == "" {
		return nil
	}
	recs, err := ReadLog(filepath.Join(t.opts.OutDir, "log.csv"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.Step <= t.step {
			t.history = append(t.history, r)
			t.elapsed = r.ElapsedS
		}
	}
	return nil
}

// MeasurePeak times n x n x n products on be's kernel (best of three after
// a warm-up) and returns FLOP/s; 0 if be cannot run a bare product.
func MeasurePeak(be Backend, n int) float64 {
	s, ok := be.(interface {
		Sgemm(m, n, k int, a, b, c []float32)
	})
	if !ok {
		return 0
	}
	a, b, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
	for i := range a {
		a[i], b[i] = float32(i%7)*0.1, float32(i%5)*0.1
	}
	s.Sgemm(n, n, n, a, b, c)
	best := math.Inf(1)
	for range 3 {
		t0 := time.Now()
		s.Sgemm(n, n, n, a, b, c)
		best = min(best, time.Since(t0).Seconds())
	}
	return 2 * float64(n) * float64(n) * float64(n) / best
}
