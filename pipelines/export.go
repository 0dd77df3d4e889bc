package pipelines

import (
	"fmt"

	"github.com/smelt-dev/smelt/export"
	"github.com/smelt-dev/smelt/shards"
)

// KindExport is the step kind that exports the run's shards for other
// trainers and tools (smelt export).
const KindExport = "export"

// Export is one entry of a recipe's export list: the run's token shards
// (megatron, nanogpt, llmc, parquet with of: tokens) or its final
// documents (jsonl, parquet) in another format, into the run directory's
// export-FORMAT (export-parquet-tokens for token Parquet).
type Export struct {
	// Format is megatron, nanogpt, llmc, parquet or jsonl.
	Format string `yaml:"format"`
	// Of is what a Parquet export holds: documents (default) or tokens.
	Of string `yaml:"of,omitempty"`
	// ValFraction is val.bin's share of documents (nanogpt, llmc; default
	// the train section's val_fraction, else 0.01): the loader's held-out
	// split.
	ValFraction float64 `yaml:"val_fraction,omitempty"`
	// Compression of JSONL: zstd (default) or gzip; of Parquet: zstd
	// (default), snappy or none.
	Compression string `yaml:"compression,omitempty"`
	// RowGroupMB is a Parquet row group's uncompressed size (default 16).
	RowGroupMB float64 `yaml:"row_group_mb,omitempty"`
	// MixTokens, for megatron, also writes this many tokens of the mix in
	// the loader's order, with SeqLen and Seed (defaults: the train
	// section's, else 1024 and 1337).
	MixTokens int64  `yaml:"mix_tokens,omitempty"`
	SeqLen    int    `yaml:"seq_len,omitempty"`
	Seed      uint64 `yaml:"seed,omitempty"`
}

// stepName is the export's step and directory name.
func (e *Export) stepName() string {
	if e.Format == string(export.FormatParquet) && e.Of == "tokens" {
		return "export-parquet-tokens"
	}
	return "export-" + e.Format
}

func (e *Export) tokens() bool {
	f := export.Format(e.Format)
	return f == export.FormatMegatron || f == export.FormatNanoGPT || f == export.FormatLLMC || e.Of == "tokens"
}

// options are the export package's options of the entry.
func (e *Export) options() export.Options {
	return export.Options{Format: export.Format(e.Format), ValFraction: e.ValFraction, Compression: e.Compression,
		RowGroupBytes: int64(e.RowGroupMB * (1 << 20)), MixTokens: e.MixTokens, SeqLen: e.SeqLen, Seed: e.Seed}
}

// resolveExports fills the export entries' defaults and checks them.
func (r *Recipe) resolveExports() error {
	seen := map[string]bool{}
	for i, e := range r.Export {
		if e == nil {
			return fmt.Errorf("recipe: export %d is empty", i+1)
		}
		if _, err := export.ParseFormat(e.Format); err != nil {
			return fmt.Errorf("recipe: export %d: %w", i+1, err)
		}
		switch {
		case e.Of == "" && e.Format == string(export.FormatParquet):
			e.Of = "documents"
		case e.Of == "" || (e.Of == "documents" || e.Of == "tokens") && e.Format == string(export.FormatParquet):
		default:
			return fmt.Errorf("recipe: export %d: of %q: only parquet chooses, documents or tokens", i+1, e.Of)
		}
		if t := r.Train; t != nil {
			if e.ValFraction == 0 && t.ValFraction != nil {
				e.ValFraction = *t.ValFraction
			}
			if e.SeqLen == 0 {
				e.SeqLen = t.SeqLen
			}
			if e.Seed == 0 {
				e.Seed = t.Seed
			}
		}
		o := e.options()
		if e.RowGroupMB < 0 {
			return fmt.Errorf("recipe: export %s: row_group_mb must be positive", e.stepName())
		}
		if err := o.Check(); err != nil {
			return fmt.Errorf("recipe: export %s: %w", e.stepName(), err)
		}
		if seen[e.stepName()] {
			return fmt.Errorf("recipe: export %s listed twice", e.stepName())
		}
		seen[e.stepName()] = true
	}
	return nil
}

// planExports adds one step per export entry: it needs the tokenize step
// (token exports) or the steps holding each mixed source's final
// documents, and reads their task outputs.
func planExports(r *Recipe, mixed []*Source, final map[string][]*Task, finalStep map[string]string, ts *Step, add func(*Step)) {
	for _, e := range r.Export {
		st := &Step{Name: e.stepName(), Kind: KindExport}
		t := &Task{Out: st.Name}
		var up []any
		if e.tokens() {
			st.Needs = []string{ts.Name}
			for i, src := range mixed {
				t.Inputs = append(t.Inputs, ts.Tasks[i].Out)
				up = append(up, []any{src.Name, src.Weight, ts.Tasks[i].Fingerprint})
			}
		} else {
			for _, src := range mixed {
				st.Needs = appendUnique(st.Needs, finalStep[src.Name])
				for _, u := range final[src.Name] {
					if contains(t.Inputs, u.Out) {
						continue // a global dedup's output, read once
					}
					t.Inputs = append(t.Inputs, u.Out)
					up = append(up, []any{src.Name, u.Fingerprint})
				}
			}
		}
		t.Fingerprint = hashJSON([]any{KindExport, e, up})
		st.Tasks = []*Task{t}
		add(st)
	}
}

// runExport runs one export step: token inputs are named after their
// sources (the Megatron datasets) with the sources' weights.
func runExport(tc *TaskContext) (*shards.Stats, error) {
	var e *Export
	for _, x := range tc.Run.Recipe.Export {
		if x.stepName() == tc.Step.Name {
			e = x
		}
	}
	if e == nil {
		return nil, fmt.Errorf("step %s: no such export in the recipe", tc.Step.Name)
	}
	var ins []*export.Input
	for _, rel := range tc.Task.Inputs {
		name, weight := rel, 0.0
		for _, s := range tc.Run.Plan.Steps {
			for _, t := range s.Tasks {
				if t.Out == rel && t.Source != "" {
					name = t.Source
					if src := tc.source(t.Source); src != nil && e.tokens() {
						weight = src.Weight
					}
				}
			}
		}
		in, err := export.OpenInput(name, tc.path(rel), weight)
		if err != nil {
			return nil, err
		}
		ins = append(ins, in)
	}
	o := e.options()
	o.Progress = tc.Progress
	prov, err := export.Run(tc.Ctx, ins, tc.path(tc.Task.Out), o)
	if err != nil {
		return nil, err
	}
	st := shards.NewStats("export")
	st.Out.Docs = prov.Docs
	st.Metric("export/tokens", "tokens").Add(float64(prov.Tokens))
	return st, nil
}
