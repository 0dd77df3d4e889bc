package trainer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// HeldOutSet is the evaluation set a run's validation scores: the data
// held out of o.Data (a mix file or token-shard directory) at
// o.ValFraction, split at o.SeqLen as the loader splits it, each source
// capped at o.ValTokens tokens (0: ValBatches x BatchSize x SeqLen). ok is
// false for a run that held nothing out or trained on synthetic or text
// data. smelt eval --held-out scores the same set from a checkpoint's
// options, so it gives the run's last validation loss.
func HeldOutSet(o Options) (set EvalSet, ok bool) {
	if o.ValFraction <= 0 || o.Data == "" || strings.HasPrefix(o.Data, "synthetic:") || strings.HasPrefix(o.Data, "text:") {
		return EvalSet{}, false
	}
	cap := o.ValTokens
	if cap <= 0 {
		cap = int64(max(1, o.ValBatches)) * int64(o.BatchSize) * int64(o.SeqLen)
	}
	return EvalSet{Name: "val", Paths: []string{o.Data}, HeldOut: o.ValFraction, SeqLen: o.SeqLen, MaxTokens: cap}, true
}

// initEval reads the held-out split and the Eval sets into memory and
// names the log's score columns.
func (t *Trainer) initEval() error {
	o := t.opts
	vs, hasVal := HeldOutSet(o)
	hasVal = hasVal && o.ValEvery > 0
	if !hasVal && len(o.Eval) == 0 {
		return nil
	}
	ck := &Checkpoint{Tokenizer: t.data.Tokenizer, EOT: t.data.EOT, TokenizerHash: t.data.TokenizerHash,
		TokenizerFile: t.data.TokenizerFile, TokenizerData: t.data.TokenizerData}
	eo := EvalOptions{Stride: o.EvalStride}
	if cpu, ok := t.Model.be.(*CPU); ok {
		eo.Workers = cpu.Workers() // the run's --threads
	}
	ev, err := newEvaluator(t.Model, ck, eo)
	if err != nil {
		return err
	}
	t.ev = ev
	t.evalCols = nil
	if hasVal {
		docs, err := ev.loadDocs(vs)
		if err != nil {
			return fmt.Errorf("trainer: validation split: %w", err)
		}
		t.valSet, t.valDocs = &vs, docs
		var srcs []string
		seen := map[string]bool{}
		for _, d := range docs {
			if !seen[d.source] {
				seen[d.source] = true
				srcs = append(srcs, d.source)
			}
		}
		if len(srcs) > 1 {
			for _, s := range srcs {
				t.evalCols = append(t.evalCols, "val/"+s)
			}
		}
		slog.Info("validation: the held-out split, scored in windows", "sources", len(srcs), "pieces", len(docs),
			"max_tokens_per_source", vs.MaxTokens, "stride", ev.opt.Stride)
	}
	names := map[string]bool{}
	for _, s := range o.Eval {
		if s.Name == "" || strings.ContainsAny(s.Name, ",\"\n/") {
			return fmt.Errorf("trainer: eval set name %q: want a plain name (no comma, quote, slash)", s.Name)
		}
		if names[s.Name] {
			return fmt.Errorf("trainer: eval set %q named twice", s.Name)
		}
		names[s.Name] = true
		docs, err := ev.loadDocs(s)
		if err != nil {
			return err
		}
		var n int
		for _, d := range docs {
			n += len(d.toks)
		}
		slog.Info("eval set", "name", s.Name, "paths", strings.Join(s.Paths, ","), "documents", len(docs), "tokens", n)
		t.evalDocs = append(t.evalDocs, docs)
		t.evalCols = append(t.evalCols, "eval/"+s.Name, "eval/"+s.Name+"/bpb")
	}
	return nil
}

// scoreEvals scores every Eval set into cols.
func (t *Trainer) scoreEvals(ctx context.Context, cols map[string]float64) error {
	t.lastEval = t.lastEval[:0]
	for i, s := range t.opts.Eval {
		rows, err := t.ev.scoreSet(ctx, s, t.evalDocs[i])
		if err != nil {
			return err
		}
		cols["eval/"+s.Name] = rows[0].LossNats
		cols["eval/"+s.Name+"/bpb"] = rows[0].BitsPerByte
		t.lastEval = append(t.lastEval, rows...)
	}
	return nil
}

// Scores are the rows of the last validation (Set "val", when the run
// validates on its held-out split) and of the last scoring of the Eval
// sets, each set's whole row first, then its sources.
func (t *Trainer) Scores() []EvalResult {
	return append(append([]EvalResult(nil), t.lastVal...), t.lastEval...)
}

// StepCheckpoint is the file name of the step-numbered copy of a
// checkpoint that KeepCheckpoints keeps.
func StepCheckpoint(step int) string { return fmt.Sprintf("checkpoint-%08d.bin", step) }

// keepCheckpoint links the checkpoint just written to its step-numbered
// name (a copy where links fail) and removes the oldest beyond
// KeepCheckpoints.
func (t *Trainer) keepCheckpoint() error {
	n := t.opts.KeepCheckpoints
	if n <= 0 || t.opts.OutDir == "" {
		return nil
	}
	dir := t.opts.OutDir
	src := filepath.Join(dir, CheckpointFile)
	dst := filepath.Join(dir, StepCheckpoint(t.step))
	os.Remove(dst)
	if err := os.Link(src, dst); err != nil {
		data, rerr := os.ReadFile(src)
		if rerr != nil {
			return fmt.Errorf("trainer: keep checkpoint: %w", rerr)
		}
		if err := writeAtomic(dst, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
			return err
		}
	}
	old, err := filepath.Glob(filepath.Join(dir, "checkpoint-*.bin"))
	if err != nil {
		return err
	}
	sort.Strings(old) // zero-padded steps sort in step order
	for len(old) > n {
		if err := os.Remove(old[0]); err != nil {
			return fmt.Errorf("trainer: remove old checkpoint: %w", err)
		}
		old = old[1:]
	}
	return nil
}

// logKernel says at info level which matrix kernel trains, and how to get
// the fast one when it is a pure-Go kernel.
func logKernel(be Backend) {
	if HasOpenBLAS {
		slog.Info("train: matrix kernel", "kernel", be.Name())
		return
	}
	slog.Info("train: matrix kernel (pure Go, several times slower than OpenBLAS)", "kernel", be.Name(),
		"faster", "apt-get install libopenblas-dev, then go build -tags openblas ./cmd/smelt")
}

// SetEval replaces the run's eval sets and their cadence (a resumed run
// takes its checkpoint's otherwise) and reads their data.
func (t *Trainer) SetEval(sets []EvalSet, every int) error {
	t.opts.Eval, t.opts.EvalEvery = sets, every
	t.evalDocs, t.valSet, t.valDocs = nil, nil, nil
	return t.initEval()
}
