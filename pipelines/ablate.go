package pipelines

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/smelt-dev/smelt/ablate"
	"github.com/smelt-dev/smelt/filter"
	"github.com/smelt-dev/smelt/shards"
)

// KindAblate is the ablation step: every arm x seed trained and scored on
// the held-out eval sets (package ablate).
const KindAblate = "ablate"

// Ablate is a recipe's ablate: section: arms of training data that differ
// in one way, trained with one model, tokenizer (the run's), token budget
// and seeds, each scored on the same held-out eval sets. The step writes
// ablate/ablation.json and ablate/ablation.txt (the table).
type Ablate struct {
	// Config is the model (default: train's config, else tiny).
	Config string `yaml:"config,omitempty"`
	// Steps x BatchSize x the model's context is every model's token budget.
	Steps     int     `yaml:"steps"`
	BatchSize int     `yaml:"batch_size"`
	LR        float64 `yaml:"lr"`
	MinLR     float64 `yaml:"min_lr"`
	Warmup    int     `yaml:"warmup"`
	// Seeds: every arm is trained once per seed (default [1, 2]).
	Seeds []uint64 `yaml:"seeds"`
	// How many models train at once is the executor's: one task per arm x
	// seed, up to -j at once with the local executor, a Slurm array with
	// --executor slurm.
	// Evals are the held-out sets. Their text is removed from every arm's
	// data (13-gram decontamination) before tokenizing.
	Evals []*AblateEval `yaml:"evals"`
	// Arms are the variants of the training data.
	Arms []*AblateArm `yaml:"arms"`
}

// AblateData selects documents from a step's output, without recomputing
// anything: a step's kept documents, plus those it dropped for the given
// reasons, above a classifier score.
type AblateData struct {
	// From is a step of the run (ingest-SOURCE, filter-SOURCE, dedup).
	From string `yaml:"from"`
	// Source keeps only this source's documents (default: the step's own
	// source, or every source).
	Source string `yaml:"source,omitempty"`
	// KeepDropped also takes the documents the step dropped for a reason
	// starting with one of these (quality/ takes the pages the classifier's
	// keep policy dropped: the filter step's output before the classifier).
	KeepDropped []string `yaml:"keep_dropped,omitempty"`
	// MinQuality keeps only documents whose recorded classifier score is at
	// least this: a threshold arm over the filter's score column.
	MinQuality *float64 `yaml:"min_quality,omitempty"`
	// DropSignals leaves out documents whose annotate-mode signals (a
	// filter with annotate: true) hold a reason starting with one of
	// these: an arm with a subset of the rules, chosen after the fact.
	DropSignals []string `yaml:"drop_signals,omitempty"`
	// Weight is the source's weight in a mix arm.
	Weight float64 `yaml:"weight,omitempty"`
}

// AblateArm is one arm: one selection (from: ...) or a mix (sources:).
type AblateArm struct {
	Name        string        `yaml:"name"`
	From        string        `yaml:"from,omitempty"`
	Source      string        `yaml:"source,omitempty"`
	KeepDropped []string      `yaml:"keep_dropped,omitempty"`
	MinQuality  *float64      `yaml:"min_quality,omitempty"`
	DropSignals []string      `yaml:"drop_signals,omitempty"`
	Sources     []*AblateData `yaml:"sources,omitempty"`
}

// AblateEval is a held-out eval set: input files (text: one document per
// file; JSONL: one per line), or documents of a step held out by a hash of
// their id (see smelt split).
type AblateEval struct {
	Name    string         `yaml:"name"`
	Inputs  []string       `yaml:"inputs,omitempty"`
	HeldOut *AblateHeldOut `yaml:"held_out,omitempty"`
	// MaxBytes, when > 0, scores only the first MaxBytes bytes of each
	// input file, cut at the last line end within them (JSONL: whole
	// lines). Scoring costs every model a forward pass over the set (two,
	// at the default half-context stride), so a long book scored whole can
	// cost more than training the model; part of it ranks arms as well.
	MaxBytes int64 `yaml:"max_bytes,omitempty"`
}

// AblateHeldOut holds out a fraction of a step's documents.
type AblateHeldOut struct {
	From        string   `yaml:"from"`
	Source      string   `yaml:"source,omitempty"`
	KeepDropped []string `yaml:"keep_dropped,omitempty"`
	Fraction    float64  `yaml:"fraction"`
	Seed        uint64   `yaml:"seed"`
}

func (a *AblateArm) data() []*AblateData {
	if len(a.Sources) > 0 {
		return a.Sources
	}
	return []*AblateData{{From: a.From, Source: a.Source, KeepDropped: a.KeepDropped, MinQuality: a.MinQuality, DropSignals: a.DropSignals, Weight: 1}}
}

// resolveAblate fills the ablate section's defaults and checks it; the
// steps it names are checked when the run is planned.
func (r *Recipe) resolveAblate(baseDir string) error {
	a := r.Ablate
	at := func(k ...any) pos { return append(pos{"ablate"}, k...) }
	if a.Config == "" {
		a.Config = "tiny"
		if r.Train != nil {
			a.Config = r.Train.Config
		}
	} else if !isTrainPreset(a.Config) && !filepath.IsAbs(a.Config) {
		a.Config = filepath.Join(baseDir, a.Config)
	}
	if a.Steps == 0 {
		a.Steps = 300
	}
	if a.BatchSize == 0 {
		a.BatchSize = 8
	}
	if a.LR == 0 {
		a.LR = 3e-3
	}
	if len(a.Seeds) == 0 {
		a.Seeds = []uint64{1, 2}
	}
	if a.Steps < 0 || a.BatchSize < 0 || a.Warmup < 0 || a.LR < 0 || a.MinLR < 0 {
		return r.errorf(at(), "ablate: steps, batch_size, warmup, lr and min_lr must not be negative")
	}
	if len(a.Evals) == 0 {
		return r.errorf(at("evals"), "ablate: no evals: name at least one held-out set")
	}
	if len(a.Arms) < 2 {
		return r.errorf(at("arms"), "ablate: %d arms: an ablation compares at least two", len(a.Arms))
	}
	names := map[string]bool{}
	for i, e := range a.Evals {
		if e == nil || !nameRE.MatchString(e.Name) || names[e.Name] {
			return r.errorf(at("evals", i), "ablate: eval %d: want a unique name of lower-case letters, digits and _", i+1)
		}
		names[e.Name] = true
		if (len(e.Inputs) > 0) == (e.HeldOut != nil) {
			return r.errorf(at("evals", i), "ablate: eval %s: give inputs or held_out, not both", e.Name)
		}
		for j, in := range e.Inputs {
			switch {
			case strings.HasPrefix(in, gomodScheme):
				p, err := resolveGomod(in)
				if err != nil {
					return r.errorf(at("evals", i, "inputs", j), "ablate: eval %s: %w", e.Name, err)
				}
				e.Inputs[j] = p
			case !filepath.IsAbs(in):
				e.Inputs[j] = filepath.Join(baseDir, in)
			}
		}
		if e.MaxBytes < 0 || e.MaxBytes > 0 && e.HeldOut != nil {
			return r.errorf(at("evals", i, "max_bytes"), "ablate: eval %s: max_bytes %d: give a positive number of bytes, for inputs (not held_out)", e.Name, e.MaxBytes)
		}
		if h := e.HeldOut; h != nil && !(h.Fraction > 0 && h.Fraction < 1) {
			return r.errorf(at("evals", i, "held_out"), "ablate: eval %s: fraction %v must be in (0, 1)", e.Name, h.Fraction)
		}
	}
	arms := map[string]bool{}
	for i, arm := range a.Arms {
		if arm == nil || !nameRE.MatchString(arm.Name) || arms[arm.Name] {
			return r.errorf(at("arms", i), "ablate: arm %d: want a unique name of lower-case letters, digits and _", i+1)
		}
		arms[arm.Name] = true
		if (arm.From != "") == (len(arm.Sources) > 0) {
			return r.errorf(at("arms", i), "ablate: arm %s: give from (one selection) or sources (a mix), not both", arm.Name)
		}
		for _, d := range arm.data() {
			if d.From == "" || d.Weight < 0 {
				return r.errorf(at("arms", i), "ablate: arm %s: every source needs from and a weight >= 0", arm.Name)
			}
		}
	}
	return nil
}

// ablateDirs returns the document directories a selection reads from the
// plan: the tasks of step from (of the source, where tasks have one), and
// their dropped/ directories when dropped documents are wanted.
func ablateDirs(p *Plan, from, source string, dropped bool) ([]string, string, error) {
	st := p.Step(from)
	if st == nil {
		var names []string
		for _, s := range p.Steps {
			if s.Kind == KindIngest || s.Kind == KindFilter || s.Kind == KindDedup {
				names = append(names, s.Name)
			}
		}
		return nil, "", fmt.Errorf("ablate: no step %q in this run (document steps: %s)", from, strings.Join(names, ", "))
	}
	if st.Kind != KindIngest && st.Kind != KindFilter && st.Kind != KindDedup {
		return nil, "", fmt.Errorf("ablate: step %s is a %s step; arms read documents (ingest, filter, dedup)", from, st.Kind)
	}
	if source == "" {
		source = st.Source
	}
	var dirs []string
	for _, t := range st.Tasks {
		if source != "" && t.Source != "" && t.Source != source {
			continue
		}
		dirs = append(dirs, t.Out)
		if dropped {
			dirs = append(dirs, filepath.Join(t.Out, shards.DroppedDir))
		}
	}
	if len(dirs) == 0 {
		return nil, "", fmt.Errorf("ablate: step %s has no documents of source %q", from, source)
	}
	return dirs, source, nil
}

// The ablation's steps: ablate-data prepares every arm's data (the eval
// sets held out, their decontamination index, each arm's sources selected,
// decontaminated and tokenized), ablate-train trains one model per arm x
// seed, one task each (in parallel up to the cores with the local
// executor, one Slurm array with --executor slurm), and ablate scores
// nothing new: it gathers the models' results into ablation.json and the
// table.
const (
	KindAblateData  = "ablate-data"
	KindAblateTrain = "ablate-train"
)

// ablatePrepared is the file ablate-data writes: every arm's prepared
// data and an empty run per seed (ablate.Prepare's result).
const ablatePrepared = "prepared.json"

// planAblate adds the ablate-data, ablate-train and ablate steps.
func planAblate(r *Recipe, p *Plan, tokenizer *Task, add func(*Step)) error {
	a := r.Ablate
	data := &Step{Name: KindAblateData, Kind: KindAblateData, Needs: []string{"tokenizer"}}
	dt := &Task{Out: KindAblateData}
	var ups []string
	need := func(from, source string, dropped bool) error {
		dirs, _, err := ablateDirs(p, from, source, dropped)
		if err != nil {
			return err
		}
		data.Needs = appendUnique(data.Needs, from)
		for _, d := range dirs {
			if !contains(dt.Inputs, d) {
				dt.Inputs = append(dt.Inputs, d)
			}
		}
		ups = append(ups, p.Step(from).Fingerprint)
		return nil
	}
	for _, arm := range a.Arms {
		for _, d := range arm.data() {
			if err := need(d.From, d.Source, len(d.KeepDropped) > 0); err != nil {
				return r.errorf(pos{"ablate", "arms"}, "arm %s: %w", arm.Name, err)
			}
		}
	}
	var evalIDs []string
	for _, e := range a.Evals {
		if h := e.HeldOut; h != nil {
			if err := need(h.From, h.Source, len(h.KeepDropped) > 0); err != nil {
				return r.errorf(pos{"ablate", "evals"}, "eval %s: %w", e.Name, err)
			}
		}
		for _, in := range e.Inputs {
			sum, _, err := fileSHA256(in)
			if err != nil {
				return r.errorf(pos{"ablate", "evals"}, "eval %s: %w", e.Name, err)
			}
			evalIDs = append(evalIDs, sum)
		}
	}
	cfgID := ""
	if !isTrainPreset(a.Config) {
		sum, _, err := fileSHA256(a.Config)
		if err != nil {
			return fmt.Errorf("ablate config: %w", err)
		}
		cfgID = sum
	}
	// The data depends on the arms, the eval sets, the tokenizer and the
	// steps read, not on the model or its budget: changing those retrains
	// without preparing the data again.
	dt.Fingerprint = hashJSON([]any{KindAblateData, a.Evals, a.Arms, r.ShardMB, evalIDs, tokenizer.Fingerprint, ups})
	data.Tasks = []*Task{dt}
	add(data)

	train := &Step{Name: KindAblateTrain, Kind: KindAblateTrain, Needs: []string{data.Name}, CPUs: 1}
	model := []any{a.Config, cfgID, a.Steps, a.BatchSize, a.LR, a.MinLR, a.Warmup}
	for _, arm := range a.Arms {
		for _, seed := range a.Seeds {
			t := &Task{Rank: len(train.Tasks), Out: path.Join(KindAblateTrain, arm.Name, fmt.Sprintf("seed-%d", seed)), Inputs: []string{dt.Out}}
			t.Fingerprint = hashJSON([]any{KindAblateTrain, dt.Fingerprint, arm.Name, seed, model})
			train.Tasks = append(train.Tasks, t)
		}
	}
	add(train) // sets train.Fingerprint from its tasks'

	st := &Step{Name: "ablate", Kind: KindAblate, Needs: []string{train.Name}}
	t := &Task{Out: "ablate", Inputs: []string{dt.Out}}
	t.Fingerprint = hashJSON([]any{KindAblate, train.Fingerprint})
	st.Tasks = []*Task{t}
	add(st)
	return nil
}

// selection returns the document filter of a selection, or nil when it
// takes a step's kept documents as they are.
func selection(source string, keepDropped []string, minQuality *float64, dropSignals []string) (func(*shards.Document) bool, string) {
	if source == "" && len(keepDropped) == 0 && minQuality == nil && len(dropSignals) == 0 {
		return nil, ""
	}
	key := "src_" + source
	if len(keepDropped) > 0 {
		key += "+dropped_" + strings.NewReplacer("/", "_", ":", "_").Replace(strings.Join(keepDropped, "_"))
	}
	if minQuality != nil {
		key += fmt.Sprintf("+q%g", *minQuality)
	}
	if len(dropSignals) > 0 {
		key += "+signals_" + strings.NewReplacer("/", "_", ":", "_").Replace(strings.Join(dropSignals, "_"))
	}
	return func(d *shards.Document) bool {
		if source != "" && d.Source != source {
			return false
		}
		if d.Drop != nil {
			ok := false
			for _, p := range keepDropped {
				ok = ok || strings.HasPrefix(d.Drop.Reason, p)
			}
			if !ok {
				return false
			}
		}
		if len(dropSignals) > 0 {
			for reason := range filter.Signals(d) {
				for _, p := range dropSignals {
					if strings.HasPrefix(reason, p) {
						return false
					}
				}
			}
		}
		return minQuality == nil || (d.HasQuality && d.Quality >= *minQuality)
	}, key
}

// ablateConfig is the ablate package's configuration for a task of the
// ablation's steps, with the eval sets where ablate-data puts them.
func ablateConfig(tc *TaskContext) (ablate.Config, error) {
	a := tc.Run.Recipe.Ablate
	tok, err := loadTokenizer(tc.Run)
	if err != nil {
		return ablate.Config{}, err
	}
	cfg := ablate.Config{Out: tc.path(KindAblateData), Tokenizer: tok, TokenizerPath: tokenizerPath(tc.Run), Model: a.Config,
		Steps: a.Steps, BatchSize: a.BatchSize, LR: a.LR, MinLR: a.MinLR, Warmup: a.Warmup, Seeds: a.Seeds,
		Parallel: 1, Workers: tc.Workers, TargetBytes: tc.Run.Recipe.ShardMB << 20,
		Log: func(s string) { slog.Info("ablate: " + s) }}
	for _, e := range a.Evals {
		set := ablate.EvalSet{Name: e.Name, Paths: e.Inputs}
		switch {
		case e.HeldOut != nil:
			set.Paths = []string{filepath.Join(cfg.Out, "evals", e.Name, "held")}
		case e.MaxBytes > 0:
			set.Paths = nil
			for i, in := range e.Inputs {
				set.Paths = append(set.Paths, cappedEvalPath(cfg.Out, e.Name, i, in))
			}
		}
		cfg.Evals = append(cfg.Evals, set)
	}
	return cfg, nil
}

// runAblateData holds the eval sets out, then prepares every arm's data
// (ablate.Prepare) and records it in prepared.json.
func runAblateData(tc *TaskContext) (*shards.Stats, error) {
	a := tc.Run.Recipe.Ablate
	cfg, err := ablateConfig(tc)
	if err != nil {
		return nil, err
	}
	out := cfg.Out
	abs := func(dirs []string) []string {
		out := make([]string, len(dirs))
		for i, d := range dirs {
			out[i] = tc.path(d)
		}
		return out
	}
	for _, e := range a.Evals {
		for i, in := range e.Inputs {
			if e.MaxBytes > 0 {
				if err := capEvalFile(in, cappedEvalPath(out, e.Name, i, in), e.MaxBytes); err != nil {
					return nil, fmt.Errorf("ablate: eval %s: %w", e.Name, err)
				}
			}
		}
		h := e.HeldOut
		if h == nil {
			continue
		}
		dirs, src, err := ablateDirs(tc.Run.Plan, h.From, h.Source, len(h.KeepDropped) > 0)
		if err != nil {
			return nil, err
		}
		sel, key := selection(src, h.KeepDropped, nil, nil)
		base := filepath.Join(out, "evals", e.Name)
		in := abs(dirs)
		if sel != nil {
			if err := ablate.Select(tc.Ctx, in, filepath.Join(base, "selected"), sel, key, cfg.Workers, cfg.TargetBytes); err != nil {
				return nil, err
			}
			in = []string{filepath.Join(base, "selected")}
		}
		_, held, err := ablate.Split(tc.Ctx, ablate.SplitOptions{Inputs: in, Fraction: h.Fraction, Seed: h.Seed,
			Out: filepath.Join(base, "rest"), HeldOut: filepath.Join(base, "held"), Workers: cfg.Workers, TargetBytes: cfg.TargetBytes})
		if err != nil {
			return nil, err
		}
		if held.Out.Docs == 0 {
			return nil, fmt.Errorf("ablate: eval %s: holding out %g of the %d documents selected from %s holds out none; raise held_out.fraction",
				e.Name, h.Fraction, held.In.Docs, h.From)
		}
		slog.Info("ablate: eval set held out", "eval", e.Name, "from", h.From, "documents", held.Out.Docs, "fraction", h.Fraction)
	}
	var arms []ablate.Arm
	for _, arm := range a.Arms {
		ar := ablate.Arm{Name: arm.Name}
		for _, d := range arm.data() {
			dirs, src, err := ablateDirs(tc.Run.Plan, d.From, d.Source, len(d.KeepDropped) > 0)
			if err != nil {
				return nil, err
			}
			sel, key := selection(src, d.KeepDropped, d.MinQuality, d.DropSignals)
			name := d.From
			if src != "" && !strings.HasSuffix(name, "-"+src) {
				name += "-" + src
			}
			ar.Sources = append(ar.Sources, ablate.Source{Name: name, Dirs: abs(dirs), Weight: d.Weight, Select: sel, SelectKey: key})
		}
		arms = append(arms, ar)
	}
	res, err := ablate.Prepare(tc.Ctx, cfg, arms)
	if err != nil {
		return nil, err
	}
	st := shards.NewStats(KindAblateData)
	for _, arm := range res.Arms {
		st.Metric("ablate/"+arm.Name+"/tokens", "tokens").Add(float64(arm.Tokens))
	}
	if err := writeJSON(filepath.Join(out, ablatePrepared), res); err != nil {
		return nil, err
	}
	return st, shards.WriteStats(out, st)
}

// readPrepared reads what ablate-data prepared.
func readPrepared(tc *TaskContext) (*ablate.Result, error) {
	path := tc.path(filepath.Join(KindAblateData, ablatePrepared))
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ablate: %w", err)
	}
	var res ablate.Result
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if n := len(res.Arms) * len(res.Seeds); n != len(tc.Run.Plan.Step(KindAblateTrain).Tasks) {
		return nil, fmt.Errorf("%s: %d models, the plan has %d", path, n, len(tc.Run.Plan.Step(KindAblateTrain).Tasks))
	}
	return &res, nil
}

// runAblateTrain trains and scores one arm x seed: task rank r is arm
// r / seeds, seed r % seeds.
func runAblateTrain(tc *TaskContext) (*shards.Stats, error) {
	cfg, err := ablateConfig(tc)
	if err != nil {
		return nil, err
	}
	res, err := readPrepared(tc)
	if err != nil {
		return nil, err
	}
	m := res.Models()[tc.Task.Rank]
	arm := &res.Arms[m.Arm]
	r, err := ablate.TrainModel(tc.Ctx, cfg, arm, res.Seeds[m.Seed], tc.path(tc.Task.Out))
	if err != nil {
		return nil, err
	}
	st := shards.NewStats(KindAblateTrain)
	for _, e := range r.Evals {
		st.Metric("ablate/"+arm.Name+"/"+e.Set+"/loss", "nats").Add(e.LossNats)
	}
	return st, shards.WriteStats(tc.path(tc.Task.Out), st)
}

// runAblate gathers the models' results into ablation.json and the table.
func runAblate(tc *TaskContext) (*shards.Stats, error) {
	res, err := readPrepared(tc)
	if err != nil {
		return nil, err
	}
	train := tc.Run.Plan.Step(KindAblateTrain)
	for i, m := range res.Models() {
		dir := tc.path(train.Tasks[i].Out)
		data, err := os.ReadFile(filepath.Join(dir, "result.json"))
		if err != nil {
			return nil, fmt.Errorf("ablate: arm %s seed %d: %w", res.Arms[m.Arm].Name, res.Seeds[m.Seed], err)
		}
		r := &res.Arms[m.Arm].Runs[m.Seed]
		if err := json.Unmarshal(data, r); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "result.json"), err)
		}
		r.Arm, r.Dir = res.Arms[m.Arm].Name, dir
	}
	out := tc.path(tc.Task.Out)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	if err := res.Finish(out); err != nil {
		return nil, err
	}
	st := shards.NewStats("ablate")
	for _, arm := range res.Arms {
		for _, c := range arm.Cells {
			st.Metric("ablate/"+arm.Name+"/"+c.Set+"/loss", "nats").Add(c.Loss)
			st.Metric("ablate/"+arm.Name+"/"+c.Set+"/bits_per_byte", "bits").Add(c.BPB)
		}
	}
	slog.Info("ablate: table\n" + res.Table())
	return st, shards.WriteStats(out, st)
}

// cappedEvalPath is where ablate-data writes the first max_bytes of an
// eval set's input file i.
func cappedEvalPath(out, set string, i int, in string) string {
	return filepath.Join(out, "evals", set, fmt.Sprintf("%d-%s", i, filepath.Base(in)))
}

// capEvalFile writes the first max bytes of in to out, cut after the last
// line end within them: whole lines of a JSONL file, whole lines of a
// text.
func capEvalFile(in, out string, max int64) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	// At most the file's size: max_bytes is the recipe's number, not an
	// allocation to make.
	buf := make([]byte, min(max, fi.Size()))
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w", in, err)
	}
	buf = buf[:n]
	if int64(n) == max {
		i := bytes.LastIndexByte(buf, '\n')
		if i < 0 {
			return fmt.Errorf("%s: the first max_bytes (%d) hold no whole line", in, max)
		}
		buf = buf[:i+1]
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return shards.WriteFileAtomic(out, buf)
}
