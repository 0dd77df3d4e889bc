// Package report turns smelt's stage output directories into something to
// look at: a self-contained HTML report with inline SVG charts (Write) and a
// read-only local web server to browse every kept and dropped document
// (NewServer).
//
// Both read what the stages already wrote: manifest.json and stats.json of
// every stage directory, the dropped/ side output, dedup's
// dedup_clusters.json, the trainer's log.csv and, for a run directory that
// `smelt run` wrote, its recipe.yaml and .smelt/plan.json.
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/smelt-dev/smelt/dedup"
	"github.com/smelt-dev/smelt/filter"
	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/trainer"
	"gopkg.in/yaml.v3"
)

// TrainLogName is the trainer's CSV log in its output directory.
const TrainLogName = "log.csv"

// Run is what Load found: one stage directory, or the steps of a run
// directory in pipeline order.
type Run struct {
	// Path is the directory given to Load.
	Path string
	// IsRun says Path is a run directory (its subdirectories are the steps).
	IsRun bool
	// Steps are the stage directories, in pipeline order.
	Steps []*Step
	// Recipe is the run's recipe.yaml as far as the report uses it (nil
	// for a single stage directory or a run without one).
	Recipe *Recipe
	// Plan is the mixture's epochs table when the tokens and weights are
	// known (see Options.MixFile); nil otherwise.
	Plan *MixPlan
	// PlanErr says why a mixture was found but its table could not be made.
	PlanErr string
	// Keep is the quality keep policy (Options.Keep or the recipe's).
	Keep string
}

// Step is one stage output directory.
type Step struct {
	// Name is the directory's name ("filter-cc", "dedup", ...).
	Name string
	Dir  string
	// Manifest is nil for a directory without one (a training run).
	Manifest *shards.Manifest
	// Stats is nil when the stage wrote no stats.json.
	Stats *shards.Stats
	// Dropped is the manifest of the dropped side output, if any.
	Dropped *shards.Manifest
	// Clusters is dedup's report of its largest clusters, if present.
	Clusters *dedup.ClusterReport
	// TrainLog holds the trainer's log.csv rows, if present.
	TrainLog []trainer.Record
	// TokensUnverified says why a token directory's counts could not be
	// verified against its shards ("" when they were: see verifyTokens).
	TokensUnverified string
}

// verifyTokenBytes bounds the token shards the report decodes to recount
// their tokens; beyond it, only the files' sizes are checked.
const verifyTokenBytes = 1 << 30

// verifyTokens checks a token manifest against its shards, so that a
// hand-edited manifest is flagged rather than reported as truth. (The
// manifest's totals were checked against its shard entries when it was
// read.) Every shard file must have the size its entry says; when the
// shards hold at most verifyTokenBytes, each is also read whole, its
// sha256 compared and its rows and tokens counted. It returns "" when the
// counts hold, else why not.
func verifyTokens(dir string, m *shards.Manifest) string {
	var total int64
	for _, s := range m.Shards {
		total += s.Bytes
	}
	vocab := 0
	if m.Tokenizer != nil {
		vocab = m.Tokenizer.VocabSize
	}
	for i := range m.Shards {
		s := &m.Shards[i]
		p := filepath.Join(dir, s.Name)
		fi, err := os.Stat(p)
		if err != nil {
			return err.Error()
		}
		if fi.Size() != s.Bytes {
			return fmt.Sprintf("%s is %d bytes, the manifest says %d", p, fi.Size(), s.Bytes)
		}
		if total <= verifyTokenBytes {
			ts, err := shards.ReadTokenShard(p, s, vocab)
			if err != nil {
				return err.Error()
			}
			if int64(ts.Rows()) != s.Rows || ts.Tokens() != s.Tokens {
				return fmt.Sprintf("%s holds %d documents and %d tokens, the manifest says %d and %d", p, ts.Rows(), ts.Tokens(), s.Rows, s.Tokens)
			}
		}
	}
	return ""
}

// Kind is the manifest's kind, or "train" for a training directory.
func (s *Step) Kind() string {
	if s.Manifest == nil {
		if len(s.TrainLog) > 0 {
			return "train"
		}
		return "stats only"
	}
	return s.Manifest.Kind
}

// Stage is the stage that wrote the directory.
func (s *Step) Stage() string {
	if s.Manifest != nil && s.Manifest.Stage != "" {
		return s.Manifest.Stage
	}
	if s.Stats != nil && s.Stats.Stage != "" {
		return s.Stats.Stage
	}
	return s.Kind()
}

// Recipe is the part of a run's recipe.yaml the report reads: source
// weights and the training budget.
type Recipe struct {
	Name    string `yaml:"name"`
	Sources []struct {
		Name      string  `yaml:"name"`
		Weight    float64 `yaml:"weight"`
		Reference bool    `yaml:"reference"`
	} `yaml:"sources"`
	Classifier *struct {
		Keep string `yaml:"keep"`
	} `yaml:"classifier"`
	Train *struct {
		Config    string `yaml:"config"`
		Steps     int64  `yaml:"steps"`
		BatchSize int64  `yaml:"batch_size"`
		SeqLen    int64  `yaml:"seq_len"`
	} `yaml:"train"`
}

// Budget is the number of tokens the recipe's training run draws, as the
// loader draws them and smelt demo prints them: steps x batch_size x
// (seq_len + 1), each sample being seq_len + 1 tokens, with seq_len 0
// meaning the model preset's context. It is 0 when the run does not train
// or its sequence length is not known (a model file's context).
func (r *Recipe) Budget() int64 {
	if r == nil || r.Train == nil {
		return 0
	}
	seq := r.Train.SeqLen
	if seq == 0 {
		c, ok := trainer.Presets[r.Train.Config]
		if !ok {
			return 0
		}
		seq = int64(c.Context)
	}
	return r.Train.Steps * r.Train.BatchSize * (seq + 1)
}

// MixPlan is the mixture's epochs table.
type MixPlan struct {
	// From says where the weights came from (a mix file or the recipe).
	From string
	// Budget is the number of tokens drawn; BudgetFrom says how it was set.
	Budget     int64
	BudgetFrom string
	Rows       []shards.PlanRow
}

// Options configure Load.
type Options struct {
	// MixFile is a mix YAML for the epochs table; by default RUN_DIR/mix.yaml
	// or a step's mix.yaml (the train step's) when one exists, else the
	// recipe's weights over the tokenize step's per-source token
	// directories.
	MixFile string
	// Budget is the token budget of the epochs table; by default the
	// recipe's steps x batch_size x seq_len, else every token once.
	Budget int64
	// Keep is the quality classifier's keep policy (pareto:ALPHA or
	// threshold:X) drawn over the quality histogram; by default the
	// recipe's classifier keep.
	Keep string
}

// planFile is the part of RUN_DIR/.smelt/plan.json that orders the steps
// and names the per-source token directories.
type planFile struct {
	Steps []struct {
		Name  string `json:"name"`
		Kind  string `json:"kind"`
		Tasks []struct {
			Rank   int    `json:"rank"`
			Source string `json:"source"`
			Out    string `json:"out"`
		} `json:"tasks"`
	} `json:"steps"`
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// IsStageDir reports whether dir is a stage output directory: it has a
// manifest.json, a stats.json (a classifier or training step) or a
// trainer's log.csv.
func IsStageDir(dir string) bool {
	return isFile(filepath.Join(dir, shards.ManifestName)) || isFile(filepath.Join(dir, shards.StatsName)) ||
		isFile(filepath.Join(dir, TrainLogName))
}

// Load reads a stage output directory, or a run directory whose
// subdirectories with a manifest.json (or a trainer log) are the steps.
// Steps are ordered as RUN_DIR/.smelt/plan.json lists them, else by the
// pipeline order of their stage, then by name.
func Load(path string, opt Options) (*Run, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s: not a directory", path)
	}
	run := &Run{Path: path, Keep: opt.Keep}
	if IsStageDir(path) {
		st, err := LoadStep(path)
		if err != nil {
			return nil, err
		}
		run.Steps = []*Step{st}
	} else {
		run.IsRun = true
		if err := run.loadRunDir(); err != nil {
			return nil, err
		}
	}
	if run.Keep != "" {
		if _, err := filter.ParseKeep(run.Keep); err != nil {
			return nil, err
		}
	}
	if err := run.loadPlan(opt); err != nil {
		if opt.MixFile != "" {
			return nil, err
		}
		run.PlanErr = err.Error()
	}
	return run, nil
}

func (run *Run) loadRunDir() error {
	ents, err := os.ReadDir(run.Path)
	if err != nil {
		return err
	}
	if data, err := os.ReadFile(filepath.Join(run.Path, "recipe.yaml")); err == nil {
		var r Recipe
		if err := yaml.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(run.Path, "recipe.yaml"), err)
		}
		run.Recipe = &r
		if run.Keep == "" && r.Classifier != nil {
			run.Keep = r.Classifier.Keep
		}
	}
	order := map[string]int{}
	if p, err := readPlanFile(run.Path); err == nil {
		for i, s := range p.Steps {
			order[s.Name] = i
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range ents {
		dir := filepath.Join(run.Path, e.Name())
		if strings.HasPrefix(e.Name(), ".") || !IsStageDir(dir) {
			continue
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() { // follows links
			continue
		}
		st, err := LoadStep(dir)
		if err != nil {
			return err
		}
		run.Steps = append(run.Steps, st)
	}
	if len(run.Steps) == 0 {
		return fmt.Errorf("%s: neither a stage directory (no manifest.json) nor a run directory (no subdirectory with one)", run.Path)
	}
	rank := func(s *Step) (int, int) {
		if i, ok := order[s.Name]; ok {
			return 0, i
		}
		return 1, stageRank(s)
	}
	sort.SliceStable(run.Steps, func(i, j int) bool {
		a1, a2 := rank(run.Steps[i])
		b1, b2 := rank(run.Steps[j])
		if a1 != b1 {
			return a1 < b1
		}
		if a2 != b2 {
			return a2 < b2
		}
		return run.Steps[i].Name < run.Steps[j].Name
	})
	return nil
}

func readPlanFile(runDir string) (*planFile, error) {
	path := filepath.Join(runDir, ".smelt", "plan.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p planFile
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &p, nil
}

// stageRank orders steps of unknown order by the pipeline's stage order.
func stageRank(s *Step) int {
	for i, p := range []string{"ingest", "filter", "classifier", "dedup", "tokenizer", "tokenize", "tokens", "mix", "train"} {
		if s.Stage() == p || s.Name == p || strings.HasPrefix(s.Name, p+"-") {
			return i
		}
	}
	return 100
}

// LoadStep reads one stage output directory.
func LoadStep(dir string) (*Step, error) {
	st := &Step{Name: filepath.Base(filepath.Clean(dir)), Dir: dir}
	if isFile(filepath.Join(dir, shards.ManifestName)) {
		m, err := shards.ReadManifest(dir)
		if err != nil {
			return nil, err
		}
		st.Manifest = m
		if m.Kind == shards.KindTokens {
			st.TokensUnverified = verifyTokens(dir, m)
		}
	}
	if s, err := shards.ReadStats(dir); err == nil {
		st.Stats = s
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if isFile(filepath.Join(dir, shards.DroppedDir, shards.ManifestName)) {
		m, err := shards.ReadManifest(filepath.Join(dir, shards.DroppedDir))
		if err != nil {
			return nil, err
		}
		st.Dropped = m
	}
	if data, err := os.ReadFile(filepath.Join(dir, dedup.ClustersName)); err == nil {
		var c dedup.ClusterReport
		if err := json.Unmarshal(data, &c); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, dedup.ClustersName), err)
		}
		st.Clusters = &c
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if isFile(filepath.Join(dir, TrainLogName)) {
		recs, err := trainer.ReadLog(filepath.Join(dir, TrainLogName))
		if err != nil {
			return nil, err
		}
		st.TrainLog = recs
	}
	return st, nil
}

// loadPlan builds the epochs table: from opt.MixFile or RUN_DIR/mix.yaml
// with shards.LoadMix, else from the recipe's weights over the tokenize
// step's per-source token directories.
func (run *Run) loadPlan(opt Options) error {
	budget, budgetFrom := opt.Budget, "--tokens"
	if budget <= 0 {
		budget, budgetFrom = run.Recipe.Budget(), "the training run: steps x batch_size x (seq_len+1) tokens, as the loader draws them"
	}
	mixFile := opt.MixFile
	if mixFile == "" {
		// RUN_DIR/mix.yaml, else the first step's (the train step keeps
		// the mix it trained on).
		cands := []string{}
		if run.IsRun {
			cands = append(cands, filepath.Join(run.Path, "mix.yaml"))
		}
		for _, st := range run.Steps {
			cands = append(cands, filepath.Join(st.Dir, "mix.yaml"))
		}
		for _, c := range cands {
			if isFile(c) {
				mixFile = c
				break
			}
		}
	}
	var mix *shards.Mix
	from := ""
	if mixFile != "" {
		m, err := shards.LoadMix(mixFile)
		if err != nil {
			return err
		}
		mix, from = m, mixFile
	} else if run.IsRun && run.Recipe != nil {
		m, err := run.recipeMix()
		if err != nil {
			return err
		}
		mix, from = m, "recipe.yaml weights over the tokenize step's token shards"
	}
	if mix == nil {
		return nil
	}
	if budget <= 0 {
		for _, s := range mix.Sources {
			budget += s.Tokens()
		}
		budgetFrom = "no training run: as many tokens as the sources hold, drawn by weight (give --tokens for another budget)"
		if run.Recipe != nil && run.Recipe.Train != nil {
			budgetFrom = "the training run's budget is not known (its model file sets the context): as many tokens as the sources hold, drawn by weight (give --tokens)"
		}
	}
	run.Plan = &MixPlan{From: from, Budget: budget, BudgetFrom: budgetFrom, Rows: mix.Plan(budget)}
	return nil
}

// recipeMix makes the run's mixture from the recipe's source weights and
// the tokenize step's per-source token directories (as the run's train
// step does), through a temporary mix file so that shards.LoadMix checks
// it as it checks any mix. It returns nil when the run has no such step.
func (run *Run) recipeMix() (*shards.Mix, error) {
	p, err := readPlanFile(run.Path)
	if err != nil {
		return nil, nil
	}
	weights := map[string]float64{}
	for _, s := range run.Recipe.Sources {
		if !s.Reference {
			weights[s.Name] = s.Weight
		}
	}
	var mf shards.MixFile
	for _, s := range p.Steps {
		if s.Kind != "tokenize" && s.Name != "tokenize" {
			continue
		}
		for _, t := range s.Tasks {
			dir := filepath.Join(run.Path, t.Out)
			w, ok := weights[t.Source]
			if !ok || !isFile(filepath.Join(dir, shards.ManifestName)) {
				continue
			}
			if m, err := shards.ReadManifest(dir); err != nil || m.Totals.Tokens == 0 {
				continue // a source the filters emptied draws nothing
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return nil, err
			}
			mf.Sources = append(mf.Sources, shards.MixFileSource{Name: t.Source, Path: abs, Weight: w})
		}
	}
	if len(mf.Sources) == 0 {
		return nil, nil
	}
	data, err := yaml.Marshal(mf)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "smelt-report-mix-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, "mix.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, err
	}
	return shards.LoadMix(path)
}
