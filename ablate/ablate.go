package ablate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"

	"github.com/smelt-dev/smelt/filter"
	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/tokenize"
	"github.com/smelt-dev/smelt/trainer"
	"gopkg.in/yaml.v3"
)

// Source is one named set of document directories an arm trains on, with
// its sampling weight within the arm.
type Source struct {
	Name   string   `json:"name" yaml:"name"`
	Dirs   []string `json:"dirs" yaml:"dirs"`
	Weight float64  `json:"weight" yaml:"weight"`
	// Select, if set, keeps only the documents it returns true for (a
	// threshold over filter's annotation columns, see Threshold); SelectKey
	// names the selection for the prepared data's fingerprint and path.
	Select    func(*shards.Document) bool `json:"-" yaml:"-"`
	SelectKey string                      `json:"select,omitempty" yaml:"select,omitempty"`
}

// Arm is one variant of the training data: one source, or a mix.
type Arm struct {
	Name    string   `json:"name"`
	Sources []Source `json:"sources"`
}

// Config fixes everything but the data: tokenizer, model, budget, seeds
// and the eval sets.
type Config struct {
	// Out is the output directory.
	Out string
	// Tokenizer encodes every arm's text; TokenizerPath is its file ("" for
	// a built-in encoding), embedded in the checkpoints.
	Tokenizer     *tokenize.Tokenizer
	TokenizerPath string
	// Model is a trainer preset or model file (vocab from the tokenizer).
	Model string
	// Steps x BatchSize x SeqLen is the token budget every model sees
	// (SeqLen 0: the model's context).
	Steps, BatchSize, SeqLen int
	LR, MinLR                float64
	Warmup                   int
	Seeds                    []uint64
	// Evals are the held-out sets every model is scored on; their text is
	// removed from every arm's data first.
	Evals []EvalSet
	// Parallel models train at once, one thread each (0: the cores).
	Parallel int
	// Workers decontaminate and tokenize (0: the cores). Output does not
	// depend on Parallel or Workers.
	Workers int
	// TargetBytes is the shard size (0: 4 MiB).
	TargetBytes int64
	// Log, if set, receives one line per finished model.
	Log func(string)
}

// Prepared is a source decontaminated and tokenized.
type Prepared struct {
	Name string `json:"name"`
	// Docs is the documents read, Removed those dropped for sharing a
	// 13-gram with an eval set (Contaminated: per eval set), Selected
	// those a threshold arm's selection dropped.
	Docs         int64            `json:"docs"`
	Removed      int64            `json:"decontaminated"`
	Contaminated map[string]int64 `json:"contaminated_by_set,omitempty"`
	Unselected   int64            `json:"unselected,omitempty"`
	Tokens       int64            `json:"tokens"`
	Bytes        int64            `json:"bytes"`
	TokenDir     string           `json:"token_dir"`
}

// RunResult is one model: an arm and a seed.
type RunResult struct {
	Arm       string       `json:"arm"`
	Seed      uint64       `json:"seed"`
	Dir       string       `json:"dir"`
	TrainLoss float64      `json:"final_train_loss"`
	Evals     []EvalResult `json:"evals"`
}

// Cell summarises one arm on one eval set over its seeds: the mean, and
// the lowest and highest seed.
type Cell struct {
	Set     string  `json:"set"`
	Loss    float64 `json:"loss"`
	LossMin float64 `json:"loss_min"`
	LossMax float64 `json:"loss_max"`
	BPB     float64 `json:"bits_per_byte"`
	BPBMin  float64 `json:"bits_per_byte_min"`
	BPBMax  float64 `json:"bits_per_byte_max"`
}

// ArmResult is one arm's row of the table.
type ArmResult struct {
	Name    string     `json:"name"`
	Sources []Prepared `json:"sources"`
	Weights []float64  `json:"weights"`
	// Tokens is the arm's training data; TokensSeen the budget each model
	// trained on; Passes the most times any of its sources was seen
	// (TokensSeen x weight / source tokens).
	Tokens     int64       `json:"tokens"`
	TokensSeen int64       `json:"tokens_seen"`
	Passes     float64     `json:"passes"`
	Runs       []RunResult `json:"runs"`
	Cells      []Cell      `json:"cells"`
}

// Result is ablation.json.
type Result struct {
	Model      string      `json:"model"`
	Params     int         `json:"params"`
	Tokenizer  string      `json:"tokenizer"`
	Steps      int         `json:"steps"`
	BatchSize  int         `json:"batch_size"`
	SeqLen     int         `json:"seq_len"`
	Seeds      []uint64    `json:"seeds"`
	Evals      []EvalSet   `json:"evals"`
	EvalTokens []int64     `json:"eval_tokens"`
	Arms       []ArmResult `json:"arms"`
}

// ResultFile and TableFile are written into Config.Out.
const (
	ResultFile = "ablation.json"
	TableFile  = "ablation.txt"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]*$`)

func (c *Config) check() error {
	if c.Out == "" || c.Tokenizer == nil || c.Model == "" {
		return errors.New("ablate: need an output directory, a tokenizer and a model")
	}
	if c.Steps <= 0 || c.BatchSize <= 0 || len(c.Seeds) == 0 {
		return fmt.Errorf("ablate: need steps (%d) and batch size (%d) > 0 and at least one seed", c.Steps, c.BatchSize)
	}
	if len(c.Evals) == 0 {
		return errors.New("ablate: need at least one eval set")
	}
	seen := map[string]bool{}
	for _, e := range c.Evals {
		if !nameRE.MatchString(e.Name) || seen[e.Name] || len(e.Paths) == 0 {
			return fmt.Errorf("ablate: eval set %q: want a unique name (letters, digits, _ . + -) and at least one path", e.Name)
		}
		seen[e.Name] = true
	}
	if c.LR == 0 {
		c.LR = 3e-3
	}
	if c.MinLR == 0 {
		c.MinLR = c.LR / 10
	}
	if c.TargetBytes == 0 {
		c.TargetBytes = 4 << 20
	}
	if c.Parallel <= 0 {
		c.Parallel = runtime.GOMAXPROCS(0)
	}
	return nil
}

// session holds what a Run (or a mixture search) shares across models.
type session struct {
	cfg  *Config
	mcfg trainer.Config
	idx  *filter.Index
	mu   sync.Mutex
	prep map[string]*Prepared
}

func newSession(ctx context.Context, cfg *Config) (*session, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	mcfg, err := trainer.ResolveConfig(cfg.Model, cfg.Tokenizer.VocabSize())
	if err != nil {
		return nil, err
	}
	if cfg.SeqLen == 0 {
		cfg.SeqLen = mcfg.Context
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, err
	}
	idx, err := buildIndex(ctx, cfg.Evals, filepath.Join(cfg.Out, "evals.idx"))
	if err != nil {
		return nil, err
	}
	return &session{cfg: cfg, mcfg: mcfg, idx: idx, prep: map[string]*Prepared{}}, nil
}

func (s *session) close() { s.idx.Close() }

// prepare decontaminates and tokenizes a source once per session.
func (s *session) prepare(ctx context.Context, src Source) (*Prepared, error) {
	key := src.Name
	if src.SelectKey != "" {
		key += "+" + src.SelectKey
	}
	if !nameRE.MatchString(key) {
		return nil, fmt.Errorf("ablate: source name %q: use letters, digits, _ . + -", key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.prep[key]; p != nil {
		return p, nil
	}
	dir := filepath.Join(s.cfg.Out, "data", key)
	dc := filter.DefaultDecontam()
	dc.UseIndex(s.idx)
	p := &Prepared{Name: src.Name, TokenDir: filepath.Join(dir, "tokens"), Contaminated: map[string]int64{}}
	st, err := shards.RunDocStage(ctx, shards.DocStageConfig{
		Stage: "decontam", Inputs: src.Dirs, Out: filepath.Join(dir, "docs"), Workers: s.cfg.Workers, TargetBytes: s.cfg.TargetBytes,
		Settings: struct {
			Index  string `json:"index"`
			Select string `json:"select"`
		}{s.idx.ID, src.SelectKey},
		Process: func(d *shards.Document) (*shards.Document, error) {
			if src.Select != nil && !src.Select(d) {
				d.Drop = &shards.Drop{Reason: DropUnselected}
				return d, nil
			}
			d.Drop = nil // a selected document read from a dropped/ directory
			if reason, value := dc.Check(d); reason != "" {
				d.Drop = &shards.Drop{Reason: reason, Value: value}
			}
			return d, nil
		},
		Observe: func(st *shards.Stats, _, out *shards.Document) {
			if out.Drop != nil && out.Drop.Reason == filter.DecontamNGram {
				set, _, _ := strings.Cut(out.Drop.Value, "#")
				st.Metric(filter.StatDecontamNGrams+set, "documents").Add(1)
			}
		},
		Declare: []string{filter.DecontamNGram, DropUnselected},
	})
	if err != nil {
		return nil, fmt.Errorf("ablate: source %s: %w", src.Name, err)
	}
	for reason, c := range st.Dropped {
		switch reason {
		case DropUnselected:
			p.Unselected += c.Docs
		default:
			p.Removed += c.Docs
		}
	}
	for k, m := range st.Metrics {
		if set, ok := cutPrefix(k, filter.StatDecontamNGrams); ok {
			p.Contaminated[set] = m.N
		}
	}
	p.Docs = st.In.Docs
	tst, err := shards.Tokenize(ctx, shards.TokenizeConfig{Inputs: []string{filepath.Join(dir, "docs")}, Out: p.TokenDir,
		Encoder: s.cfg.Tokenizer, Source: src.Name, Workers: s.cfg.Workers, TargetBytes: s.cfg.TargetBytes})
	if err != nil {
		return nil, fmt.Errorf("ablate: source %s: %w", src.Name, err)
	}
	_ = tst
	man, err := shards.ReadManifest(p.TokenDir)
	if err != nil {
		return nil, err
	}
	p.Tokens, p.Bytes = man.Totals.Tokens, man.Totals.DataBytes
	if p.Tokens == 0 {
		return nil, fmt.Errorf("ablate: source %s has no tokens left after decontamination and selection", src.Name)
	}
	slog.Info("ablate: prepared", "source", key, "docs", p.Docs, "decontaminated", p.Removed, "unselected", p.Unselected, "tokens", p.Tokens)
	s.prep[key] = p
	return p, nil
}

// DropUnselected is a document a threshold arm's selection left out.
const DropUnselected = "ablate/unselected"

func cutPrefix(s, p string) (string, bool) {
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

// trainOne trains one model on a weighted mix of prepared sources and
// scores it; a finished model (its result.json) is reused.
func (s *session) trainOne(ctx context.Context, dir string, srcs []*Prepared, weights []float64, seed uint64) (*RunResult, error) {
	resPath := filepath.Join(dir, "result.json")
	if data, err := os.ReadFile(resPath); err == nil {
		var r RunResult
		if json.Unmarshal(data, &r) == nil {
			return &r, nil
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// A partial run starts again: models are small, and a fresh start
	// keeps the result independent of where it was killed.
	os.Remove(filepath.Join(dir, trainer.CheckpointFile))
	os.Remove(filepath.Join(dir, "log.csv"))
	var mf shards.MixFile
	for i, p := range srcs {
		if weights[i] <= 0 {
			continue
		}
		rel, err := filepath.Rel(dir, p.TokenDir)
		if err != nil {
			return nil, err
		}
		mf.Sources = append(mf.Sources, shards.MixFileSource{Name: p.Name, Path: rel, Weight: weights[i]})
	}
	data, err := yaml.Marshal(&mf)
	if err != nil {
		return nil, err
	}
	mixPath := filepath.Join(dir, "mix.yaml")
	if err := shards.WriteFileAtomic(mixPath, data); err != nil {
		return nil, err
	}
	mix, err := shards.LoadMix(mixPath)
	if err != nil {
		return nil, err
	}
	c := s.cfg
	o := trainer.DefaultOptions()
	o.Steps, o.BatchSize, o.SeqLen, o.Seed, o.OutDir = c.Steps, c.BatchSize, c.SeqLen, seed, dir
	o.LR, o.MinLR, o.WarmupSteps = c.LR, c.MinLR, c.Warmup
	o.ValEvery, o.CheckpointEvery, o.PeakFLOPS = 0, 0, 1e9
	o.Data = mixPath
	train, _, err := shards.OpenTraining(mix, shards.LoaderOptions{SeqLen: o.SeqLen, BatchSize: o.BatchSize, Seed: seed})
	if err != nil {
		return nil, err
	}
	info := trainer.DataInfo{Vocab: mix.VocabSize(), Tokenizer: mix.Tokenizer(), EOT: mix.EOT()}
	if info.TokenizerHash, info.TokenizerFile, info.TokenizerData, err = trainer.TokenizerInfo(c.Tokenizer, c.TokenizerPath); err != nil {
		return nil, err
	}
	t, err := trainer.New(s.mcfg, trainer.NewCPU(1), o, info, train, nil)
	if err != nil {
		return nil, err
	}
	if err := t.Run(ctx); err != nil {
		return nil, err
	}
	h := t.History()
	r := &RunResult{Seed: seed, Dir: dir, TrainLoss: h[len(h)-1].Loss}
	if r.Evals, err = scoreCheckpoint(ctx, dir, c.Evals); err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return r, shards.WriteFileAtomic(resPath, out)
}

// Run prepares every arm's data, trains every arm x seed (Parallel at a
// time) and writes ablation.json and ablation.txt into cfg.Out. It is
// Prepare, TrainModel for every arm x seed and Finish, which a scheduler
// may also call apart (the recipe step runs the models as tasks of their
// own: in parallel up to the cores, or as a Slurm array).
func Run(ctx context.Context, cfg Config, arms []Arm) (*Result, error) {
	res, err := Prepare(ctx, cfg, arms)
	if err != nil {
		return nil, err
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, cfg.Parallel)
	for _, j := range res.Models() {
		wg.Add(1)
		sem <- struct{}{}
		go func(j Model) {
			defer wg.Done()
			defer func() { <-sem }()
			ar := &res.Arms[j.Arm]
			seed := cfg.Seeds[j.Seed]
			r, err := TrainModel(ctx, cfg, ar, seed, ModelDir(cfg.Out, ar.Name, seed))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				return
			}
			ar.Runs[j.Seed] = *r
		}(j)
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := res.Finish(cfg.Out); err != nil {
		return nil, err
	}
	return res, nil
}

// Prepare checks the arms, builds the eval sets' decontamination index
// (cfg.Out/evals.idx) and decontaminates and tokenizes every arm's sources
// into cfg.Out/data. The result has every arm's data and an empty run per
// seed (ArmResult.Runs), filled by TrainModel.
func Prepare(ctx context.Context, cfg Config, arms []Arm) (*Result, error) {
	if len(arms) == 0 {
		return nil, errors.New("ablate: no arms")
	}
	seen := map[string]bool{}
	for _, a := range arms {
		if !nameRE.MatchString(a.Name) || seen[a.Name] || len(a.Sources) == 0 {
			return nil, fmt.Errorf("ablate: arm %q: want a unique name (letters, digits, _ . + -) and at least one source", a.Name)
		}
		seen[a.Name] = true
	}
	s, err := newSession(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	defer s.close()
	res := &Result{Model: cfg.Model, Params: s.mcfg.NumParams(), Tokenizer: cfg.Tokenizer.Name(), Steps: cfg.Steps,
		BatchSize: cfg.BatchSize, SeqLen: cfg.SeqLen, Seeds: cfg.Seeds, Evals: cfg.Evals}
	for _, a := range arms {
		ar := ArmResult{Name: a.Name, TokensSeen: int64(cfg.Steps) * int64(cfg.BatchSize) * int64(cfg.SeqLen)}
		var sum float64
		for _, src := range a.Sources {
			if src.Weight < 0 || math.IsNaN(src.Weight) {
				return nil, fmt.Errorf("ablate: arm %s: source %s weight %v", a.Name, src.Name, src.Weight)
			}
			sum += src.Weight
		}
		for _, src := range a.Sources {
			p, err := s.prepare(ctx, src)
			if err != nil {
				return nil, err
			}
			w := 1 / float64(len(a.Sources))
			if sum > 0 {
				w = src.Weight / sum
			}
			ar.Sources = append(ar.Sources, *p)
			ar.Weights = append(ar.Weights, w)
			ar.Tokens += p.Tokens
			ar.Passes = max(ar.Passes, float64(ar.TokensSeen)*w/float64(p.Tokens))
		}
		ar.Runs = make([]RunResult, len(cfg.Seeds))
		res.Arms = append(res.Arms, ar)
	}
	return res, nil
}

// Model is one model of an ablation: an index into Result.Arms and one
// into Result.Seeds.
type Model struct{ Arm, Seed int }

// Models lists the ablation's models, arm by arm, seed by seed: the order
// of the recipe step's tasks.
func (r *Result) Models() []Model {
	var out []Model
	for a := range r.Arms {
		for s := range r.Seeds {
			out = append(out, Model{a, s})
		}
	}
	return out
}

// ModelDir is where Run trains an arm's model for a seed.
func ModelDir(out, arm string, seed uint64) string {
	return filepath.Join(out, "runs", arm, fmt.Sprintf("seed-%d", seed))
}

// TrainModel trains the arm's model for seed in dir on the arm's prepared
// data (from Prepare) and scores it on cfg's eval sets; a model already
// finished there (its result.json) is reused. Each model trains on one
// thread, so its numbers do not depend on how many run at once.
func TrainModel(ctx context.Context, cfg Config, arm *ArmResult, seed uint64, dir string) (*RunResult, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	mcfg, err := trainer.ResolveConfig(cfg.Model, cfg.Tokenizer.VocabSize())
	if err != nil {
		return nil, err
	}
	if cfg.SeqLen == 0 {
		cfg.SeqLen = mcfg.Context
	}
	srcs := make([]*Prepared, len(arm.Sources))
	for i := range arm.Sources {
		srcs[i] = &arm.Sources[i]
	}
	s := &session{cfg: &cfg, mcfg: mcfg}
	r, err := s.trainOne(ctx, dir, srcs, arm.Weights, seed)
	if err != nil {
		return nil, fmt.Errorf("ablate: arm %s seed %d: %w", arm.Name, seed, err)
	}
	r.Arm = arm.Name
	if cfg.Log != nil {
		cfg.Log(fmt.Sprintf("arm %s seed %d: train loss %.3f, %s", arm.Name, seed, r.TrainLoss, evalLine(r.Evals)))
	}
	return r, nil
}

// Finish summarises every arm's runs over the seeds and writes
// ablation.json and ablation.txt into out.
func (r *Result) Finish(out string) error {
	r.EvalTokens = nil
	for i := range r.Arms {
		for j, run := range r.Arms[i].Runs {
			if len(run.Evals) == 0 {
				return fmt.Errorf("ablate: arm %s seed %d has no result", r.Arms[i].Name, r.Seeds[j])
			}
		}
		r.Arms[i].Cells = summarise(r.Arms[i].Runs, r.Evals)
	}
	if len(r.Arms) > 0 && len(r.Arms[0].Runs) > 0 {
		for _, e := range r.Evals {
			r.EvalTokens = append(r.EvalTokens, findEval(r.Arms[0].Runs[0].Evals, e.Name).Tokens)
		}
	}
	return r.Write(out)
}

func evalLine(es []EvalResult) string {
	s := ""
	for i, e := range es {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %.3f nats/token %.3f bits/byte", e.Set, e.LossNats, e.BitsPerByte)
	}
	return s
}

func summarise(runs []RunResult, sets []EvalSet) []Cell {
	var cells []Cell
	for _, set := range sets {
		c := Cell{Set: set.Name, LossMin: math.Inf(1), LossMax: math.Inf(-1), BPBMin: math.Inf(1), BPBMax: math.Inf(-1)}
		for _, r := range runs {
			e := findEval(r.Evals, set.Name)
			c.Loss += e.LossNats / float64(len(runs))
			c.BPB += e.BitsPerByte / float64(len(runs))
			c.LossMin, c.LossMax = min(c.LossMin, e.LossNats), max(c.LossMax, e.LossNats)
			c.BPBMin, c.BPBMax = min(c.BPBMin, e.BitsPerByte), max(c.BPBMax, e.BitsPerByte)
		}
		cells = append(cells, c)
	}
	return cells
}

// Cell returns the arm's summary on the named eval set.
func (a *ArmResult) Cell(set string) (Cell, bool) {
	for _, c := range a.Cells {
		if c.Set == set {
			return c, true
		}
	}
	return Cell{}, false
}

// Beats reports whether arm a's every seed scored a lower loss on set than
// arm b's every seed: a is better beyond the seed spread.
func (r *Result) Beats(a, b, set string) bool {
	ca, okA := r.cell(a, set)
	cb, okB := r.cell(b, set)
	return okA && okB && ca.LossMax < cb.LossMin
}

func (r *Result) cell(arm, set string) (Cell, bool) {
	for i := range r.Arms {
		if r.Arms[i].Name == arm {
			return r.Arms[i].Cell(set)
		}
	}
	return Cell{}, false
}

// Write writes ablation.json and ablation.txt into dir, atomically.
func (r *Result) Write(dir string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := shards.WriteFileAtomic(filepath.Join(dir, ResultFile), append(data, '\n')); err != nil {
		return err
	}
	return shards.WriteFileAtomic(filepath.Join(dir, TableFile), []byte(r.Table()))
}

// ReadResult reads ablation.json from dir.
func ReadResult(dir string) (*Result, error) {
	data, err := os.ReadFile(filepath.Join(dir, ResultFile))
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ResultFile), err)
	}
	return &r, nil
}

func findEval(es []EvalResult, set string) EvalResult {
	for _, e := range es {
		if e.Set == set {
			return e
		}
	}
	return EvalResult{Set: set}
}
