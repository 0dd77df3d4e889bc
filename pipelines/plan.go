package pipelines

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/smelt-dev/smelt/ingest"
	"github.com/smelt-dev/smelt/shards"
)

// Step kinds: the stages a recipe is made of.
const (
	KindIngest     = "ingest"
	KindClassifier = "classifier"
	KindFilter     = "filter"
	KindDedup      = "dedup"
	KindTokenizer  = "tokenizer"
	KindTokenize   = "tokenize"
	KindTrain      = "train"
)

// Plan is a recipe cut into steps and tasks. It is derived from the
// resolved recipe and the input files, and saved in the run directory so
// that every task (in this process or a Slurm job) works from the same one.
type Plan struct {
	// RecipeHash is the resolved recipe's hash.
	RecipeHash string  `json:"recipe_hash"`
	Steps      []*Step `json:"steps"`
}

// Step is one stage of a run: its tasks can run in parallel once the steps
// it needs are done.
type Step struct {
	// Name is the step's directory in the run directory ("ingest-cc", "dedup").
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Source is the source of an ingest or filter step.
	Source string `json:"source,omitempty"`
	// Needs are the steps whose tasks must be done first.
	Needs []string `json:"needs,omitempty"`
	// Merge says the step's directory is merged from its tasks' outputs
	// (document and token shards) once every task is done.
	Merge bool    `json:"merge,omitempty"`
	Tasks []*Task `json:"tasks"`
	// Fingerprint of the merged output: the tasks' fingerprints together.
	Fingerprint string `json:"fingerprint"`
	// CPUs and MemBytes, when set, are what each task of the step asks of
	// the Slurm executor (--cpus-per-task, --mem) and the parallelism and
	// memory limit it runs with.
	CPUs     int   `json:"cpus,omitempty"`
	MemBytes int64 `json:"mem_bytes,omitempty"`
}

// Task is one unit of work: a rank of a step.
type Task struct {
	Rank int `json:"rank"`
	// Source is the source the task works on (tokenize, and dedup with
	// scope source; empty for the one task of a dedup with scope global).
	Source string `json:"source,omitempty"`
	// Files are the input files of an ingest task.
	Files []InputFile `json:"files,omitempty"`
	// Skipped are the entries of the source's input directories that were
	// left out, with their reasons (the source's first ingest task counts
	// them).
	Skipped []ingest.SkippedInput `json:"skipped,omitempty"`
	// Inputs are finished shard directories, relative to the run directory.
	Inputs []string `json:"inputs,omitempty"`
	// Out is the task's output directory, relative to the run directory.
	Out string `json:"out"`
	// Fingerprint identifies the task's settings and inputs (with the
	// fingerprints of the tasks it reads): a marker with another
	// fingerprint is not this task's.
	Fingerprint string `json:"fingerprint"`
	// Group, Part and Parts place a dedup task: the documents deduplicated
	// together (a source, or "" for a global dedup), the task's number in
	// its group (the sketch task, or the bucket partition of Parts).
	Group string `json:"group,omitempty"`
	Part  int    `json:"part,omitempty"`
	Parts int    `json:"parts,omitempty"`
	// Snapshot lists the store generations a dedup group decides against,
	// read when the run was planned.
	Snapshot []uint64 `json:"snapshot,omitempty"`
	// Run identifies a dedup group's run in its store.
	Run string `json:"run,omitempty"`
}

// Step returns the step called name.
func (p *Plan) Step(name string) *Step {
	for _, s := range p.Steps {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func hashJSON(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("pipelines: fingerprint: %v", err)) // plain data: cannot fail
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func taskDir(step string, rank int) string {
	return filepath.Join(step, "tasks", fmt.Sprintf("%05d", rank))
}

// NewPlan cuts a resolved recipe into steps and tasks, listing the input
// files of every source.
func NewPlan(r *Recipe) (*Plan, error) {
	hash, err := r.Hash()
	if err != nil {
		return nil, err
	}
	p := &Plan{RecipeHash: hash}
	add := func(s *Step) {
		var fps []string
		for _, t := range s.Tasks {
			fps = append(fps, t.Fingerprint)
		}
		s.Fingerprint = hashJSON([]any{s.Name, fps})
		p.Steps = append(p.Steps, s)
	}
	fpsOf := func(tasks []*Task) []string {
		out := make([]string, len(tasks))
		for i, t := range tasks {
			out[i] = t.Fingerprint
		}
		return out
	}
	targetBytes := r.ShardMB << 20

	// Ingest, one step per source.
	ingestSteps := map[string]*Step{}
	for _, src := range r.Sources {
		files, skipped, err := expandSource(src)
		if err != nil {
			return nil, r.inputError(src, err)
		}
		nameFiles(files)
		st := &Step{Name: "ingest-" + src.Name, Kind: KindIngest, Source: src.Name, Merge: true}
		settings := []any{src.Name, src.Format, src.TextField, src.IDField, targetBytes}
		for i, g := range splitFiles(files, src.Tasks, src.TaskMB<<20) {
			t := &Task{Rank: i, Files: g, Out: taskDir(st.Name, i)}
			fp := []any{KindIngest, settings, g}
			if i == 0 && len(skipped) > 0 {
				// What the source's directories left out is counted once,
				// by its first task.
				t.Skipped = skipped
				fp = append(fp, skipped)
			}
			t.Fingerprint = hashJSON(fp)
			st.Tasks = append(st.Tasks, t)
		}
		ingestSteps[src.Name] = st
		add(st)
	}

	// The classifier, trained on the ingested positives and negatives.
	var clf *Step
	if c := r.Classifier; c != nil {
		clf = &Step{Name: "classifier", Kind: KindClassifier}
		t := &Task{Out: "classifier"}
		var up []string
		for _, names := range [][]string{c.Positives, c.Negatives} {
			for _, n := range names {
				is := ingestSteps[n]
				clf.Needs = appendUnique(clf.Needs, is.Name)
				for _, it := range is.Tasks {
					t.Inputs = append(t.Inputs, it.Out)
					up = append(up, it.Fingerprint)
				}
			}
		}
		modelID := ""
		if c.Model != "" {
			sum, _, err := fileSHA256(c.Model)
			if err != nil {
				return nil, fmt.Errorf("classifier model: %w", err)
			}
			modelID = sum
		}
		t.Fingerprint = hashJSON([]any{KindClassifier, c, modelID, up})
		clf.Tasks = []*Task{t}
		add(clf)
	}

	// Filter, dedup: the documents of each mixed source.
	final := map[string][]*Task{} // source -> the tasks holding its latest documents
	finalStep := map[string]string{}
	var mixed []*Source
	for _, src := range r.Sources {
		if src.Reference {
			continue
		}
		mixed = append(mixed, src)
		is := ingestSteps[src.Name]
		final[src.Name], finalStep[src.Name] = is.Tasks, is.Name
		if src.Filter == nil {
			continue
		}
		st := &Step{Name: "filter-" + src.Name, Kind: KindFilter, Source: src.Name, Merge: true, Needs: []string{is.Name}}
		var clfFP any
		useClf := r.Classifier != nil && contains(r.Classifier.ApplyTo, src.Name)
		if useClf {
			st.Needs = append(st.Needs, clf.Name)
			clfFP = clf.Tasks[0].Fingerprint
		}
		for i, it := range is.Tasks {
			st.Tasks = append(st.Tasks, &Task{Rank: i, Inputs: []string{it.Out}, Out: taskDir(st.Name, i),
				Fingerprint: hashJSON([]any{KindFilter, src.Filter, useClf, clfFP, targetBytes, it.Fingerprint})})
		}
		final[src.Name], finalStep[src.Name] = st.Tasks, st.Name
		add(st)
	}
	if d := r.Dedup; d != nil {
		steps, err := planDedup(r, d, mixed, final, finalStep, targetBytes)
		if err != nil {
			return nil, err
		}
		for _, st := range steps {
			add(st)
		}
	}
	// Under a global dedup every source's documents are in one output, which
	// the tokenizer reads once and each tokenize task filters by source.
	// (The staged dedup routes each upstream task on its own, so every
	// source's documents are in its own route tasks: nothing is shared.)
	shared := false

	// The tokenizer: named, or trained on the final documents.
	tk := &Step{Name: "tokenizer", Kind: KindTokenizer}
	tt := &Task{Out: "tokenizer"}
	var up []string
	if r.Tokenizer.Train != nil {
		for _, src := range mixed {
			tk.Needs = appendUnique(tk.Needs, finalStep[src.Name])
			for _, u := range final[src.Name] {
				if contains(tt.Inputs, u.Out) {
					continue // a global dedup's output, read once
				}
				tt.Inputs = append(tt.Inputs, u.Out)
				up = append(up, u.Fingerprint)
			}
		}
	}
	tokID := ""
	if n := r.Tokenizer.Name; n != "" && !isBuiltinTokenizer(n) {
		sum, _, err := fileSHA256(n)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		tokID = sum
	}
	tt.Fingerprint = hashJSON([]any{KindTokenizer, r.Tokenizer, tokID, up})
	tk.Tasks = []*Task{tt}
	add(tk)

	// Token shards, one task per mixed source.
	ts := &Step{Name: "tokenize", Kind: KindTokenize, Merge: true, Needs: []string{tk.Name}}
	for i, src := range mixed {
		ts.Needs = appendUnique(ts.Needs, finalStep[src.Name])
		// Named after the source (not the rank), so that mix.yaml, which
		// points at these directories, names its sources in its paths.
		t := &Task{Rank: i, Source: src.Name, Out: filepath.Join(ts.Name, "tasks", src.Name)}
		for _, u := range final[src.Name] {
			t.Inputs = append(t.Inputs, u.Out)
		}
		fp := []any{KindTokenize, src.Name, targetBytes, tt.Fingerprint, fpsOf(final[src.Name])}
		if shared {
			fp = append(fp, "only_source")
		}
		if r.TokenCompression != shards.TokenCompressionZstd {
			// zstd, the only kind before the key existed, keeps the
			// fingerprints of runs made before it; the default, none,
			// writes other bytes.
			fp = append(fp, "token_compression", shards.TokenCompressionNone)
		}
		t.Fingerprint = hashJSON(fp)
		ts.Tasks = append(ts.Tasks, t)
	}
	add(ts)

	if tr := r.Train; tr != nil {
		st := &Step{Name: "train", Kind: KindTrain, Needs: []string{ts.Name}}
		t := &Task{Out: "train"}
		var weights []float64
		for i, src := range mixed {
			t.Inputs = append(t.Inputs, ts.Tasks[i].Out)
			weights = append(weights, src.Weight)
		}
		cfgID := ""
		if !isTrainPreset(tr.Config) {
			sum, _, err := fileSHA256(tr.Config)
			if err != nil {
				return nil, fmt.Errorf("train config: %w", err)
			}
			cfgID = sum
		}
		t.Fingerprint = hashJSON([]any{KindTrain, tr, cfgID, weights, fpsOf(ts.Tasks)})
		st.Tasks = []*Task{t}
		add(st)
	}
	planExports(r, mixed, final, finalStep, ts, add)
	if r.Ablate != nil {
		if err := planAblate(r, p, tt, add); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func appendUnique(list []string, s string) []string {
	if contains(list, s) {
		return list
	}
	return append(list, s)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
