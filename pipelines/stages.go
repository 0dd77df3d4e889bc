package pipelines

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/smelt-dev/smelt/filter"
	"github.com/smelt-dev/smelt/ingest"
	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/store"
	"github.com/smelt-dev/smelt/tokenize"
	"github.com/smelt-dev/smelt/trainer"
	"gopkg.in/yaml.v3"
)

// TaskContext is what a stage gets to run one task.
type TaskContext struct {
	Ctx  context.Context
	Run  *Run
	Step *Step
	Task *Task
	// Workers is the parallelism inside the task (0 = all cores).
	Workers int
	// Progress, if set, receives progress in bytes of input.
	Progress func(done, total int64)
}

// path resolves a run-directory-relative path.
func (tc *TaskContext) path(rel string) string { return filepath.Join(tc.Run.Dir, rel) }

func (tc *TaskContext) inputs() []string {
	out := make([]string, len(tc.Task.Inputs))
	for i, in := range tc.Task.Inputs {
		out[i] = tc.path(in)
	}
	return out
}

func (tc *TaskContext) source(name string) *Source {
	for _, s := range tc.Run.Recipe.Sources {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func (tc *TaskContext) progress(docs, bytes, totalDocs, totalBytes int64) {
	if tc.Progress != nil {
		tc.Progress(bytes, totalBytes)
	}
}

// StageDef is a stage the runner can run: its kind, what it does, the
// defaults of its recipe section (for smelt explain), and the function that
// runs one task.
type StageDef struct {
	Kind string
	Doc  string
	// Defaults returns the recipe section's default settings, or nil.
	Defaults func() any
	// Run runs one task; it returns the task's stats when the stage keeps
	// them.
	Run func(*TaskContext) (*shards.Stats, error)
}

// Registry maps step kinds to stages. It is a value: tests build their own.
type Registry struct {
	stages map[string]*StageDef
	order  []string
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{stages: map[string]*StageDef{}} }

// Register adds (or replaces) a stage.
func (r *Registry) Register(d *StageDef) {
	if _, ok := r.stages[d.Kind]; !ok {
		r.order = append(r.order, d.Kind)
	}
	r.stages[d.Kind] = d
}

// Stage returns the stage of a kind, or nil.
func (r *Registry) Stage(kind string) *StageDef { return r.stages[kind] }

// Kinds lists the registered kinds in registration order.
func (r *Registry) Kinds() []string { return append([]string(nil), r.order...) }

// DefaultRegistry holds smelt's stages.
func DefaultRegistry() *Registry {
	r := NewRegistry()
	r.Register(&StageDef{Kind: KindIngest, Doc: "read a source's input files (WARC, WET, JSONL, Parquet, HTML, text) into document shards; one task per group of input files",
		Defaults: func() any { return &Source{Format: string(ingest.FormatAuto), TaskMB: 512} }, Run: runIngest})
	r.Register(&StageDef{Kind: KindClassifier, Doc: "train the reference-vs-crawl quality classifier (hashed word uni+bigrams, logistic regression; kind: fasttext for a supervised fastText model) on the ingested positives and negatives, or load a model",
		Defaults: func() any {
			c := &Classifier{}
			c.defaults()
			return c
		}, Run: runClassifier})
	r.Register(&StageDef{Kind: KindFilter, Doc: "heuristic rules (Gopher, C4, FineWeb, language, URL) and the classifier's keep policy; one task per ingest task",
		Defaults: func() any { return filter.DefaultConfig() }, Run: runFilter})
	r.Register(&StageDef{Kind: KindDedupSketch, Doc: "dedup, step 1: MinHash signatures, exact and URL hashes of one upstream task's documents, as key records sorted into the bucket partitions",
		Run: runDedupSketch})
	r.Register(&StageDef{Kind: KindDedupBucket, Doc: "dedup, step 2: one partition of the key space (dedup.steps.bucket.tasks of them), a k-way merge of every sketch task's records (and the store's) into verified candidate pairs, O(k) for a bucket of k",
		Run: runDedupBucket})
	r.Register(&StageDef{Kind: KindDedupCluster, Doc: "dedup, step 3: union-find over the pairs, one survivor per cluster, the decision per sketch task; then the store commit",
		Run: runDedupCluster})
	registerClusterSteps(r) // the cluster step cut into partitions (dedup_cluster.go)
	r.Register(&StageDef{Kind: KindDedup, Doc: "exact and MinHash LSH dedup, step 4 (route): one task per upstream task writes its kept documents and dropped/; scope source (default) dedups within each source, scope global across all sources",
		Defaults: func() any { return DefaultDedup() }, Run: runDedup})
	r.Register(&StageDef{Kind: KindTokenizer, Doc: "a built-in or file tokenizer, or a byte-level BPE trained on the kept text",
		Defaults: func() any { return &Tokenizer{Name: "gpt2"} }, Run: runTokenizer})
	r.Register(&StageDef{Kind: KindTokenize, Doc: "token shards (Arrow IPC; ids uncompressed, or zstd with token_compression: zstd), one task per source, named after the source for the mix",
		Run: runTokenize})
	r.Register(&StageDef{Kind: KindTrain, Doc: "train a GPT-2 style model on CPU on the weighted mix of the token shards, then sample text",
		Defaults: func() any {
			t := &Train{}
			_ = t.resolve("")
			return t
		}, Run: runTrain})
	r.Register(&StageDef{Kind: KindExport, Doc: "the token shards (megatron, nanogpt, llmc, parquet of: tokens) or the final documents (parquet, jsonl) in the formats other trainers and tools read; one task per export entry",
		Defaults: func() any { return &Export{Format: "megatron"} }, Run: runExport})
	r.Register(&StageDef{Kind: KindAblate, Doc: "ablation: small models of one shape, tokenizer, token budget and seeds trained on arms of the data (a step's output, a selection of it, or a mix), scored on held-out sets whose text is removed from every arm first; ablation.json and a table",
		Run: runAblate})
	r.Register(&StageDef{Kind: KindAblateData, Doc: "an ablation's data: eval sets held out, each arm's documents selected, decontaminated against them and tokenized", Run: runAblateData})
	r.Register(&StageDef{Kind: KindAblateTrain, Doc: "an ablation's models: one task per arm x seed, trained on one thread and scored on the eval sets", Run: runAblateTrain})
	return r
}

func runIngest(tc *TaskContext) (*shards.Stats, error) {
	src := tc.source(tc.Step.Source)
	files := make([]string, len(tc.Task.Files))
	var names []string // set only when some file is not known by its base name
	for i, f := range tc.Task.Files {
		if f.Name != "" && names == nil {
			names = make([]string, len(tc.Task.Files))
			for j, g := range tc.Task.Files {
				names[j] = filepath.Base(g.Path)
			}
		}
		if f.Name != "" {
			names[i] = f.Name
		}
		fi, err := store.Stat(tc.Ctx, f.Location()) // a local file or a URL, read directly
		if err != nil {
			return nil, err
		}
		if mt := fi.ModTime; max(fi.Size, 0) != f.Bytes || !mt.IsZero() && mt.UnixNano() != f.MTime || mt.IsZero() && f.MTime != 0 {
			return nil, fmt.Errorf("input %s changed since the run was planned: run smelt run again (with --force to redo what it fed)", f.Path)
		}
		files[i] = f.Location()
	}
	lid, err := sourceLangID(src)
	if err != nil {
		return nil, err
	}
	return ingest.Run(tc.Ctx, files, tc.path(tc.Task.Out), ingest.Options{
		LangID:      lid,
		Source:      src.Name,
		Format:      ingest.Format(src.Format),
		Workers:     tc.Workers,
		TargetBytes: tc.Run.Recipe.ShardMB << 20,
		Reader:      ingest.ReaderOptions{TextField: src.TextField, IDField: src.IDField},
		Names:       names,
		Skipped:     tc.Task.Skipped,
		Progress: func(p ingest.Progress) {
			if tc.Progress != nil {
				tc.Progress(p.Bytes, p.TotalBytes)
			}
		},
	})
}

// modelFile is the classifier step's model, in the run directory.
const modelFile = "classifier/model.bin"

func runClassifier(tc *TaskContext) (*shards.Stats, error) {
	c := tc.Run.Recipe.Classifier
	out := tc.path(tc.Task.Out)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	if c.Kind == ClassifierFastText {
		return runFastTextClassifier(tc, out)
	}
	if c.Model != "" {
		data, err := os.ReadFile(c.Model)
		if err != nil {
			return nil, fmt.Errorf("classifier model: %w", err)
		}
		if _, err := filter.UnmarshalModel(data); err != nil {
			return nil, fmt.Errorf("classifier model %s: %w", c.Model, err)
		}
		return nil, shards.WriteFileAtomic(tc.path(modelFile), data)
	}
	st := shards.NewStats("classifier")
	examples, err := classifierExamples(tc, st)
	if err != nil {
		return nil, err
	}
	res, err := filter.Train(tc.Ctx, examples, filter.TrainOptions{Bits: c.Bits, C: c.C, HoldOut: c.HoldOut, MaxIter: c.MaxIter})
	if err != nil {
		return nil, err
	}
	if err := filter.SaveModel(tc.path(modelFile), res.Model); err != nil {
		return nil, err
	}
	for _, m := range []struct {
		name string
		v    filter.Metrics
	}{{"train", res.Train}, {"held_out", res.Test}} {
		st.Metric("classifier/"+m.name+"_accuracy", "fraction").Add(m.v.Accuracy)
		st.Metric("classifier/"+m.name+"_roc_auc", "auc").Add(m.v.AUC)
		st.Metric("classifier/"+m.name+"_precision", "fraction").Add(m.v.Precision)
		st.Metric("classifier/"+m.name+"_recall", "fraction").Add(m.v.Recall)
	}
	st.Metric("classifier/examples", "pieces").Add(float64(len(examples)))
	st.Metric("classifier/iterations", "L-BFGS").Add(float64(res.Iterations))
	if err := writeJSON(filepath.Join(out, "metrics.json"), map[string]any{
		"train": res.Train, "held_out": res.Test, "iterations": res.Iterations, "examples": len(examples),
	}); err != nil {
		return nil, err
	}
	slog.Info("classifier trained", "examples", len(examples), "held_out_accuracy", fmt.Sprintf("%.4f", res.Test.Accuracy),
		"held_out_auc", fmt.Sprintf("%.4f", res.Test.AUC))
	return st, shards.WriteStats(out, st)
}

// classifierExamples reads the classifier's positives and negatives (the
// ingest outputs of its sources, up to SampleMB of text per class, in
// input order) and cuts them into training pieces, counting what it read
// in st.
func classifierExamples(tc *TaskContext, st *shards.Stats) ([]filter.Example, error) {
	c := tc.Run.Recipe.Classifier
	var examples []filter.Example
	dirs := tc.Task.Inputs
	// Inputs hold the positives' ingest tasks, then the negatives'.
	posDirs := map[string]bool{}
	for _, n := range c.Positives {
		for _, s := range tc.Run.Plan.Steps {
			if s.Kind == KindIngest && s.Source == n {
				for _, t := range s.Tasks {
					posDirs[t.Out] = true
				}
			}
		}
	}
	seen := map[string]bool{}
	read := map[bool]int64{} // text bytes read per class
	limit := c.SampleMB << 20
	for _, rel := range dirs {
		pos := posDirs[rel]
		if !pos && seen[rel] {
			continue
		}
		seen[rel] = true
		if read[pos] >= limit {
			continue
		}
		r, err := shards.OpenDocDirs(tc.path(rel))
		if err != nil {
			return nil, err
		}
		for read[pos] < limit {
			d, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				r.Close()
				return nil, err
			}
			read[pos] += int64(len(d.Text))
			st.In.Add(shards.DocBytes(d))
			st.Keep(d)
			for i, piece := range filter.ChunkText(d.Text, c.ChunkBytes) {
				examples = append(examples, filter.Example{ID: d.ID + "#" + strconv.Itoa(i), Text: piece, Positive: pos})
			}
		}
		r.Close()
	}
	return examples, nil
}

func runFilter(tc *TaskContext) (*shards.Stats, error) {
	src := tc.source(tc.Step.Source)
	pipe, err := src.Filter.Pipeline()
	if err != nil {
		return nil, err
	}
	stage := &filter.Stage{Pipeline: pipe, Annotate: src.Filter.Annotate}
	settings := map[string]any{"rules": src.Filter}
	if c := tc.Run.Recipe.Classifier; c != nil && contains(c.ApplyTo, src.Name) && c.Kind == ClassifierFastText {
		if err := useFastTextClassifier(tc, stage, settings); err != nil {
			return nil, err
		}
	} else if c != nil && contains(c.ApplyTo, src.Name) {
		data, err := os.ReadFile(tc.path(modelFile))
		if err != nil {
			return nil, fmt.Errorf("classifier: %w", err)
		}
		m, err := filter.UnmarshalModel(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", modelFile, err)
		}
		k, err := filter.ParseKeep(c.Keep)
		if err != nil {
			return nil, err
		}
		k.Seed = c.Seed
		sum := sha256.Sum256(data)
		stage.Model, stage.Keep = m, k
		settings["model_sha256"], settings["keep"] = hex.EncodeToString(sum[:]), k
	}
	return stage.Run(tc.Ctx, filter.RunOptions{Inputs: tc.inputs(), Out: tc.path(tc.Task.Out), Workers: tc.Workers,
		TargetBytes: tc.Run.Recipe.ShardMB << 20, Settings: settings, Progress: tc.progress})
}

// tokenizerFile is the trained tokenizer's file in the run directory,
// named after the recipe and vocabulary (the name token manifests record).
func tokenizerFile(run *Run) string {
	return filepath.Join("tokenizer", fmt.Sprintf("%s-bpe%d.json", run.Recipe.Name, run.Recipe.Tokenizer.Train.VocabSize))
}

// loadTokenizer returns the run's tokenizer: the recipe's named one, or the
// one the tokenizer step trained.
func loadTokenizer(run *Run) (*tokenize.Tokenizer, error) {
	t := run.Recipe.Tokenizer
	tok, err := tokenize.Open(tokenizerPath(run), tokenize.Options{EOS: t.EOS, BOS: t.BOS, Pattern: t.Pattern, Specials: t.Specials})
	if err != nil {
		return nil, err
	}
	return tok, tok.CheckEOT()
}

// tokenizerPath is the run's tokenizer: a built-in name or a file.
func tokenizerPath(run *Run) string {
	if n := run.Recipe.Tokenizer.Name; n != "" {
		return n
	}
	return filepath.Join(run.Dir, tokenizerFile(run))
}

func runTokenizer(tc *TaskContext) (*shards.Stats, error) {
	t := tc.Run.Recipe.Tokenizer
	out := tc.path(tc.Task.Out)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	if t.Train != nil {
		if err := trainTokenizer(tc, t.Train, filepath.Join(tc.Run.Dir, tokenizerFile(tc.Run))); err != nil {
			return nil, err
		}
	}
	tok, err := loadTokenizer(tc.Run)
	if err != nil {
		return nil, err
	}
	eot, _ := tok.EOT()
	return nil, writeJSON(filepath.Join(out, "info.json"), shards.TokenizerInfo{
		Name: tok.Name(), RanksHash: tok.RanksHash(), VocabSize: tok.VocabSize(), EOT: eot})
}

// sampleText reads up to limit bytes of document text from dirs, in order.
func sampleText(ctx context.Context, dirs []string, limit int64) ([]string, error) {
	r, err := shards.OpenDocDirs(dirs...)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var texts []string
	var n int64
	for n < limit {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		texts = append(texts, d.Text)
		n += int64(len(d.Text))
	}
	return texts, nil
}

func runTokenize(tc *TaskContext) (*shards.Stats, error) {
	tok, err := loadTokenizer(tc.Run)
	if err != nil {
		return nil, err
	}
	only := ""
	if dd := tc.Run.Plan.Step("dedup"); dd != nil && len(dd.Tasks) == 1 && dd.Tasks[0].Source == "" &&
		contains(tc.Task.Inputs, dd.Tasks[0].Out) {
		// A global dedup's output: it holds every source's documents. (The
		// plan decides, as it did the task's fingerprint.)
		only = tc.Task.Source
	}
	return shards.Tokenize(tc.Ctx, shards.TokenizeConfig{Inputs: tc.inputs(), Out: tc.path(tc.Task.Out), Encoder: tok,
		Source: tc.Task.Source, OnlySource: only, Workers: tc.Workers, TargetBytes: tc.Run.Recipe.ShardMB << 20,
		Compression: tc.Run.Recipe.TokenCompression, Progress: tc.progress})
}

// MixFileName is the mix the tokenize step's outputs make, written into the
// train directory (and the run directory) for smelt mix plan and smelt train.
const MixFileName = "mix.yaml"

// writeMix writes the mix of the token shards into dir, with paths
// relative to dir.
func writeMix(run *Run, dir string) (string, error) {
	ts := run.Plan.Step("tokenize")
	var mf shards.MixFile
	for _, t := range ts.Tasks {
		src := run.sourceByName(t.Source)
		rel, err := filepath.Rel(dir, filepath.Join(run.Dir, t.Out))
		if err != nil {
			return "", err
		}
		mf.Sources = append(mf.Sources, shards.MixFileSource{Name: src.Name, Path: rel, Weight: src.Weight})
	}
	data, err := yaml.Marshal(&mf)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, MixFileName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return path, shards.WriteFileAtomic(path, data)
}

func (r *Run) sourceByName(name string) *Source {
	for _, s := range r.Recipe.Sources {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func runTrain(tc *TaskContext) (*shards.Stats, error) {
	tr := tc.Run.Recipe.Train
	out := tc.path(tc.Task.Out)
	mixPath, err := writeMix(tc.Run, out)
	if err != nil {
		return nil, err
	}
	mix, err := shards.LoadMix(mixPath)
	if err != nil {
		return nil, err
	}
	cfg, err := trainer.ResolveConfig(tr.Config, mix.VocabSize())
	if err != nil {
		return nil, err
	}
	o := trainer.DefaultOptions()
	o.Steps, o.BatchSize, o.SeqLen = tr.Steps, tr.BatchSize, tr.SeqLen
	if o.SeqLen == 0 {
		o.SeqLen = cfg.Context
	}
	o.LR, o.MinLR, o.WarmupSteps, o.WeightDecay, o.GradClip = tr.LR, tr.MinLR, tr.Warmup, tr.WeightDecay, tr.GradClip
	o.ValEvery, o.ValBatches, o.Seed, o.OutDir = tr.ValEvery, tr.ValBatches, tr.Seed, out
	o.CheckpointEvery = max(1, tr.Steps/4)
	o.BatchTokens, o.DecaySteps, o.EvalEvery, o.KeepCheckpoints = tr.BatchTokens, tr.DecaySteps, tr.EvalEvery, tr.KeepCheckpoints
	for _, e := range tr.Eval {
		o.Eval = append(o.Eval, trainer.EvalSet{Name: e.Name, Paths: e.Paths})
	}
	// Held-out data is set aside only when validating.
	lo := shards.LoaderOptions{SeqLen: o.SeqLen, BatchSize: o.BatchSize, Seed: o.Seed}
	if o.ValEvery > 0 {
		lo.ValFraction = *tr.ValFraction
	}
	train, vl, err := shards.OpenTraining(mix, lo)
	if err != nil {
		return nil, err
	}
	var val trainer.Batcher
	if vl != nil {
		val = vl
	} else {
		if o.ValEvery > 0 && lo.ValFraction == 0 {
			slog.Info("train: val_fraction is 0: no validation", "val_every", o.ValEvery)
		}
		o.ValEvery = 0
	}
	o.ValFraction = train.Options().ValFraction
	if o.Data, err = filepath.Abs(mixPath); err != nil {
		return nil, err
	}
	be := trainer.NewCPU(tr.Threads)
	// MFU's peak is measured at start (a few 512^3 products, well under a
	// second) and raised by any faster step, so MFU stays <= 100%.
	peak := 0.0
	tok, err := loadTokenizer(tc.Run)
	if err != nil {
		return nil, err
	}
	data := trainer.DataInfo{Vocab: mix.VocabSize(), Tokenizer: mix.Tokenizer(), EOT: mix.EOT()}
	if data.TokenizerHash, data.TokenizerFile, data.TokenizerData, err = trainer.TokenizerInfo(tok, tokenizerPath(tc.Run)); err != nil {
		return nil, err
	}
	if data.TokenizerHash != mix.TokenizerInfo().RanksHash {
		return nil, fmt.Errorf("train: the run's tokenizer %s (ranks hash %s) is not the one the shards were tokenized with (%s)",
			tok.Name(), data.TokenizerHash, mix.TokenizerInfo().RanksHash)
	}
	var t *trainer.Trainer
	if _, err := os.Stat(filepath.Join(out, trainer.CheckpointFile)); err == nil {
		t, err = trainer.Resume(out, be, tr.Steps, out, peak, data, train, val)
		if err != nil {
			return nil, err
		}
		slog.Info("train: resuming", "step", t.Step())
	} else {
		o.PeakFLOPS = peak
		if t, err = trainer.New(cfg, be, o, data, train, val); err != nil {
			return nil, err
		}
	}
	ro := t.Options()
	passes, err := train.Passes(int64(ro.Steps) * int64(ro.BatchTokens/(ro.BatchSize*ro.SeqLen)))
	if err != nil {
		return nil, err
	}
	trainer.LogPasses(passes)
	st := shards.NewStats("train")
	for _, p := range passes {
		st.Metric("train/passes/"+p.Name, "passes").Add(p.Passes)
	}
	t.OnStep = func(r trainer.Record) {
		if tc.Progress != nil {
			tc.Progress(int64(r.Step), int64(tr.Steps))
		}
		if r.Step%max(1, tr.Steps/10) == 0 || r.Step == tr.Steps {
			args := []any{"step", r.Step, "of", tr.Steps, "loss", fmt.Sprintf("%.4f", r.Loss)}
			if !math.IsNaN(r.ValLoss) {
				args = append(args, "val_loss", fmt.Sprintf("%.4f", r.ValLoss))
			}
			slog.Info("train", append(args, "tok/s", fmt.Sprintf("%.0f", r.TokensPerS))...)
		}
	}
	if t.Step() < tr.Steps {
		if err := t.Run(tc.Ctx); err != nil {
			return nil, err
		}
	}
	for _, r := range t.History() {
		st.Metric("train/loss", "nats").Add(r.Loss)
	}
	if h := t.History(); len(h) > 0 {
		st.Metric("train/final_loss", "nats").Add(h[len(h)-1].Loss)
		for i := len(h) - 1; i >= 0; i-- {
			if !math.IsNaN(h[i].ValLoss) {
				st.Metric("train/final_val_loss", "nats").Add(h[i].ValLoss)
				break
			}
		}
	}
	for _, r := range t.Scores() {
		name := "train/eval/" + r.Set
		if r.Source != "" {
			name += "/" + r.Source
		}
		st.Metric(name, "nats").Add(r.LossNats)
		if r.Bytes > 0 {
			st.Metric(name+"/bpb", "bits/byte").Add(r.BitsPerByte)
		}
	}
	if tr.SampleTokens > 0 {
		if err := writeSample(tc, out, mix.EOT()); err != nil {
			return nil, err
		}
	}
	return st, shards.WriteStats(out, st)
}

// SampleFile is the generated text sample in the train directory.
const SampleFile = "sample.txt"

func writeSample(tc *TaskContext, out string, eot uint32) error {
	tr := tc.Run.Recipe.Train
	tok, err := loadTokenizer(tc.Run)
	if err != nil {
		return err
	}
	m, _, err := trainer.LoadModel(out, trainer.NewCPU(tr.Threads))
	if err != nil {
		return err
	}
	prompt := []uint32{eot}
	if tr.Prompt != "" {
		prompt = tok.EncodeOrdinary(tr.Prompt)
	}
	gen, err := trainer.Generate(tc.Ctx, m, prompt, trainer.SampleOptions{Tokens: tr.SampleTokens, Temperature: 0.8, TopK: 40, Seed: tr.Seed}, nil)
	if err != nil {
		return err
	}
	ids := append(append([]uint32(nil), prompt...), gen...)
	if tr.Prompt == "" {
		ids = gen
	}
	text, err := tok.Decode(ids)
	if err != nil {
		return err
	}
	s := strings.ToValidUTF8(string(text), "\uFFFD")
	return shards.WriteFileAtomic(filepath.Join(out, SampleFile), []byte(s+"\n"))
}

func isBuiltinTokenizer(name string) bool { return tokenize.IsBuiltin(name) }

func isTrainPreset(name string) bool {
	_, ok := trainer.Presets[name]
	return ok
}

func defaultTrainOptions() trainer.Options { return trainer.DefaultOptions() }

// trainTokenizer trains a byte-level BPE (GPT-2 pre-tokenisation, with
// <|endoftext|> as its one special token, id 0) on up to SampleMB of the
// kept text of the mixed sources, in mix order, and writes it as a Hugging
// Face tokenizer.json.
func trainTokenizer(tc *TaskContext, t *TokenizerTrain, path string) error {
	texts, err := sampleText(tc.Ctx, tc.inputs(), t.SampleMB<<20)
	if err != nil {
		return err
	}
	readers := make([]io.Reader, 0, 2*len(texts))
	for _, s := range texts {
		readers = append(readers, strings.NewReader(s), strings.NewReader(tokenize.EndOfText))
	}
	tr, err := tokenize.Train(tc.Ctx, readers, tokenize.TrainOptions{VocabSize: t.VocabSize, Specials: []string{tokenize.EndOfText},
		Pattern: tokenize.PatternGPT2, Workers: tc.Workers,
		Progress: func(phase string, done, total int64) {
			if tc.Progress != nil && phase == "merge" {
				tc.Progress(done, total)
			}
		}})
	if err != nil {
		return err
	}
	data, err := tr.MarshalHF()
	if err != nil {
		return err
	}
	slog.Info("tokenizer trained", "vocab", len(tr.Vocab), "merges", len(tr.Merges), "input_bytes", tr.InputBytes)
	return shards.WriteFileAtomic(path, data)
}
