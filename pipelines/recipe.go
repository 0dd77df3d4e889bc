// Package pipelines runs whole smelt pipelines from YAML recipes: a recipe
// names the sources, the filter chain per source, the quality classifier,
// dedup, the tokenizer, the token shards, the mix and an optional training
// run; the runner splits every step into tasks, runs them with a local
// worker pool or as Slurm job arrays, and records a completion marker per
// task so that a killed run resumes to the same bytes.
//
// A run directory holds recipe.yaml (the resolved recipe), run.json (the
// binary version), one ordinary stage output directory per step
// (ingest-SOURCE, filter-SOURCE, classifier, dedup, tokenizer, tokenize,
// train, export-FORMAT) with its manifest.json and stats.json (an export
// step: its files and export.json), each task's own output
// under STEP/tasks/NNNNN, and .smelt/ with the plan, markers and logs.
package pipelines

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/smelt-dev/smelt/dedup"
	"github.com/smelt-dev/smelt/filter"
	"github.com/smelt-dev/smelt/ingest"
	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/store"
	"github.com/smelt-dev/smelt/tokenize"
	"github.com/smelt-dev/smelt/trainer"
	"gopkg.in/yaml.v3"
)

// Recipe describes a whole run. Zero values are filled by defaults when the
// recipe is parsed (see ParseRecipe); the resolved recipe is what a run
// directory records.
type Recipe struct {
	// Name names the run (default run directory runs/NAME).
	Name string `yaml:"name"`
	// ShardMB is the target uncompressed size of document and token shards
	// in MiB (default 64).
	ShardMB int64 `yaml:"shard_mb"`
	// TokenCompression is how token shards store their Arrow buffers:
	// none (the default, also when empty) or zstd
	// (shards.TokenCompressionNone, shards.TokenCompressionZstd).
	TokenCompression string `yaml:"token_compression,omitempty"`
	// Sources are the datasets, in mix order.
	Sources []*Source `yaml:"sources"`
	// Classifier, if set, trains (or loads) the quality classifier that the
	// filter of the sources it applies to uses.
	Classifier *Classifier `yaml:"classifier,omitempty"`
	// Dedup, if set, deduplicates the mixed sources: each within itself
	// (scope: source, the default, as GPT-3 did per dataset and FineWeb
	// per crawl), or all of them together (scope: global).
	Dedup *Dedup `yaml:"dedup,omitempty"`
	// Tokenizer names or trains the tokenizer of the token shards.
	Tokenizer *Tokenizer `yaml:"tokenizer"`
	// Train, if set, trains a model on the mix of the token shards.
	Train *Train `yaml:"train,omitempty"`
	// Export lists exports of the shards for other trainers and tools
	// (see export.go).
	Export []*Export `yaml:"export,omitempty"`
	// Ablate, if set, trains small models on arms of the data and scores
	// them on held-out sets (ablate.go).
	Ablate *Ablate `yaml:"ablate,omitempty"`

	node *yaml.Node // the parsed YAML, for the line of a setting
	file string     // the recipe file, when it was read from one
}

// Source is one dataset of a recipe.
type Source struct {
	// Name is the source's name: its documents' source and its mix name.
	Name string `yaml:"name"`
	// Inputs are files, directories or globs (relative to the recipe's
	// directory), or gomod:MODULE/PATH-GLOB for files inside a Go module
	// that this smelt binary was built with (found in the module cache, or
	// downloaded with go mod download). They are the only paths a recipe
	// may point outside the run directory with.
	Inputs []string `yaml:"inputs"`
	// Format forces the ingest format (auto, warc, wet, jsonl, parquet,
	// html, text); default auto.
	Format string `yaml:"format"`
	// TextField and IDField name the JSONL/Parquet text and id fields.
	TextField string `yaml:"text_field,omitempty"`
	IDField   string `yaml:"id_field,omitempty"`
	// Weight is the source's sampling weight in the mix (> 0 unless
	// Reference).
	Weight float64 `yaml:"weight"`
	// Reference marks a source used only as the classifier's positives: it
	// is ingested but neither filtered, deduplicated nor mixed.
	Reference bool `yaml:"reference,omitempty"`
	// Tasks is the number of ingest (and filter) tasks the inputs are split
	// into; 0 means one task per TaskMB of input.
	Tasks int `yaml:"tasks,omitempty"`
	// TaskMB is the input size per task when Tasks is 0 (default 512).
	TaskMB int64 `yaml:"task_mb,omitempty"`
	// Filter is the source's filter chain (rules and thresholds, over the
	// published defaults: an empty mapping {} runs the default rules). No
	// filter key means the source is not filtered.
	Filter *filter.Config `yaml:"filter,omitempty"`
	// LangID is ingest's language identification: whatlanggo (default) or
	// fasttext:PATH for a fastText model such as lid.176.ftz.
	LangID string `yaml:"langid,omitempty"`
}

// Classifier configures the GPT-3 style quality classifier.
type Classifier struct {
	// Kind is logistic (the default: smelt's GPT-3 style logistic
	// regression) or fasttext (a supervised fastText model, scored by the
	// probability of Label).
	Kind string `yaml:"kind,omitempty"`
	// Label is a fastText classifier's positive label (default
	// __label__hq, which 'smelt fasttext train' and DCLM use).
	Label string `yaml:"label,omitempty"`
	// Model loads a trained model file (an input path) instead of training.
	Model string `yaml:"model,omitempty"`
	// Positives and Negatives name the sources whose ingested documents
	// train the classifier (reference text vs. raw crawl).
	Positives []string `yaml:"positives,omitempty"`
	Negatives []string `yaml:"negatives,omitempty"`
	// ApplyTo names the sources whose filter scores documents with the
	// classifier and keeps them by Keep.
	ApplyTo []string `yaml:"apply_to"`
	// Keep is the keep policy: pareto:ALPHA (GPT-3: pareto:9) or threshold:X.
	Keep string `yaml:"keep"`
	// Seed is mixed into the per-document Pareto draw.
	Seed uint64 `yaml:"seed"`
	// SampleMB bounds the text read per class (positives, negatives), in
	// input order, so training memory stays bounded (default 256).
	SampleMB int64 `yaml:"sample_mb"`
	// Training settings (see smelt classifier train).
	Bits       uint    `yaml:"bits"`
	C          float64 `yaml:"c"`
	ChunkBytes int     `yaml:"chunk_bytes"`
	HoldOut    float64 `yaml:"hold_out"`
	MaxIter    int     `yaml:"max_iter"`
}

// Dedup configures deduplication; its fields are dedup.Options' (exact,
// minhash, url, ngram, perms, bands, rows, threshold, seed, scope).
//
// Scope chooses what is deduplicated against what. ScopeSource (the
// recipe's default) runs one dedup task per mixed source, over that
// source's documents only. ScopeGlobal runs one task over every mixed
// source's documents, in recipe order, so a document that another source
// (or an earlier document of its own) already holds is dropped, as
// smelt dedup --scope global does; the tokenize step then reads each
// source's documents from that one output. Either way each dedup task
// deduplicates all of its input together (dedup.Options' own Scope is
// global in the task, see RunOptions).
type Dedup struct {
	dedup.Options `yaml:",inline"`
	// Store, if set, is a directory of persistent dedup stores (Badger):
	// with scope source, one per source (STORE/SOURCE), each source being
	// deduplicated against every document kept into its store by earlier
	// runs; with scope global, one for all sources (STORE/_global, a name
	// no source can have). This run's kept documents are added. The two
	// scopes do not share stores. Like inputs, it lives outside the run
	// directory (relative to the recipe's directory).
	Store string `yaml:"store,omitempty"`
	// Steps sets the dedup steps' tasks, CPUs and memory (dedup_stage.go).
	Steps DedupSteps `yaml:"steps,omitempty"`
}

// GlobalStoreName is the store, under Dedup.Store, of a dedup with scope
// global.
const GlobalStoreName = "_global"

// DefaultDedup returns a recipe's dedup section before its keys are read:
// dedup.DefaultOptions deduplicating within each source.
func DefaultDedup() *Dedup {
	d := &Dedup{Options: dedup.DefaultOptions()}
	d.Scope = dedup.ScopeSource
	return d
}

// Global reports whether the dedup runs across all sources at once.
func (d *Dedup) Global() bool { return d.Scope == dedup.ScopeGlobal }

// RunOptions are the options a dedup task runs with: the recipe's, with
// dedup's own scope global, since a task's input is exactly what it
// deduplicates together (one source, or all of them). Stores made by
// earlier smelt versions, which always ran this way, stay usable.
func (d *Dedup) RunOptions() dedup.Options {
	o := d.Options
	o.Scope = dedup.ScopeGlobal
	return o
}

// StorePath is the store a dedup task of source (empty for the one task of
// a global dedup) reads and adds to, or "" without a store.
func (d *Dedup) StorePath(source string) string {
	switch {
	case d.Store == "":
		return ""
	case source == "":
		return filepath.Join(d.Store, GlobalStoreName)
	default:
		return filepath.Join(d.Store, source)
	}
}

// Tokenizer names a tokenizer or trains one.
type Tokenizer struct {
	// Name is a built-in encoding (gpt2, cl100k_base, ...) or a tokenizer
	// file (an input path).
	Name string `yaml:"name,omitempty"`
	// Train, if set, trains a byte-level BPE on the kept text instead.
	Train *TokenizerTrain `yaml:"train,omitempty"`
	// EOS is the end-of-text token ending every document (default: the
	// tokenizer's own); BOS one starting every document (default: the one
	// its post-processor adds, if any; "none" for none).
	EOS string `yaml:"eos,omitempty"`
	BOS string `yaml:"bos,omitempty"`
	// Pattern and Specials are a tiktoken rank file's split pattern and
	// special tokens (tokenize.Options; Specials may name a file).
	Pattern  string `yaml:"pattern,omitempty"`
	Specials string `yaml:"specials,omitempty"`
}

// TokenizerTrain configures BPE training.
type TokenizerTrain struct {
	// VocabSize is the number of tokens (256 bytes + merges + end-of-text).
	VocabSize int `yaml:"vocab_size"`
	// SampleMB bounds the text read for training, taken from the mixed
	// sources in mix order (default 64).
	SampleMB int64 `yaml:"sample_mb"`
}

// Train configures the training run on the token shards' mix.
type Train struct {
	// Config is a trainer preset (tiny, small, gpt2-124m) or a model YAML
	// file (an input path).
	Config      string  `yaml:"config"`
	Steps       int     `yaml:"steps"`
	BatchSize   int     `yaml:"batch_size"`
	SeqLen      int     `yaml:"seq_len"`
	LR          float64 `yaml:"lr"`
	MinLR       float64 `yaml:"min_lr"`
	Warmup      int     `yaml:"warmup"`
	WeightDecay float64 `yaml:"weight_decay"`
	GradClip    float64 `yaml:"grad_clip"`
	ValEvery    int     `yaml:"val_every"`
	ValBatches  int     `yaml:"val_batches"`
	// ValFraction is the fraction held out for validation when ValEvery
	// is set (unset: 0.01; 0: none, and no validation).
	ValFraction *float64 `yaml:"val_fraction,omitempty"`
	Seed        uint64   `yaml:"seed"`
	// Threads run the math; results are bit-identical only for the same
	// thread count (default 1, so a run is reproducible anywhere).
	Threads int `yaml:"threads"`
	// SampleTokens is the length of the text sample generated at the end
	// (0 = none), from Prompt (default: the end-of-text token).
	SampleTokens int    `yaml:"sample_tokens"`
	Prompt       string `yaml:"prompt,omitempty"`
	// BatchTokens is the tokens per optimizer step, reached by gradient
	// accumulation (0: one batch); DecaySteps the step the cosine reaches
	// min_lr (0: steps).
	BatchTokens int `yaml:"batch_tokens,omitempty"`
	DecaySteps  int `yaml:"decay_steps,omitempty"`
	// Eval are fixed held-out sets scored every EvalEvery steps (0:
	// val_every) into log.csv and loss.png (see smelt eval); paths are
	// inputs, relative to the recipe's directory.
	Eval      []EvalData `yaml:"eval,omitempty"`
	EvalEvery int        `yaml:"eval_every,omitempty"`
	// KeepCheckpoints keeps the last N checkpoints as checkpoint-STEP.bin.
	KeepCheckpoints int `yaml:"keep_checkpoints,omitempty"`
}

// EvalData is one eval set of a train step: text, JSONL, document or
// token shards (smelt eval's DATA).
type EvalData struct {
	Name  string   `yaml:"name"`
	Paths []string `yaml:"paths"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_]*$`)

// ParseRecipe decodes a recipe strictly (unknown keys and wrong types are
// errors with their line), fills the defaults and validates it. baseDir is
// the directory relative input paths are resolved against; they are made
// absolute in the result.
func ParseRecipe(data []byte, baseDir string) (*Recipe, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty recipe")
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("line %d: a second YAML document; a recipe holds one", extra.Line)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: a recipe is a mapping (name, sources, ...)", doc.Line)
	}
	r := &Recipe{}
	if err := checkKnown(&doc, reflect.TypeOf(r)); err != nil {
		return nil, err
	}
	root := doc.Content[0]
	if err := root.Decode(r); err != nil {
		return nil, cleanYAMLError(err)
	}
	// Sub-configurations decode over their defaults (yaml.v3 decodes list
	// elements into fresh zero values, so they are decoded again here).
	if srcs := mapValue(root, "sources"); srcs != nil && srcs.Kind == yaml.SequenceNode {
		for i, sn := range srcs.Content {
			if fn := mapValue(sn, "filter"); fn != nil && fn.Tag != "!!null" && i < len(r.Sources) && r.Sources[i] != nil {
				r.Sources[i].Filter = filter.DefaultConfig()
				if err := fn.Decode(r.Sources[i].Filter); err != nil {
					return nil, cleanYAMLError(err)
				}
			}
		}
	}
	if dn := mapValue(root, "dedup"); dn != nil && dn.Tag != "!!null" {
		r.Dedup = DefaultDedup()
		if err := dn.Decode(r.Dedup); err != nil {
			return nil, cleanYAMLError(err)
		}
	}
	r.node = root
	if err := r.resolve(baseDir); err != nil {
		return nil, err
	}
	return r, nil
}

// mapValue returns the value node of key in a mapping node.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// MaxMB bounds the recipe's sizes in MiB (task_mb, the sample_mb
// settings): like shards.MaxShardMB for shard_mb, 1 TiB, far below where
// shifting a size in MiB to bytes overflows int64.
const MaxMB = shards.MaxShardMB

// MaxVocab bounds tokenizer train's vocab_size: BPE training numbers
// tokens with int32 ids.
const MaxVocab = math.MaxInt32

// trainPresets are the trainer's preset names, sorted.
func trainPresets() []string {
	names := make([]string, 0, len(trainer.Presets))
	for n := range trainer.Presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// pos locates a recipe setting: mapping keys (string) and list indices
// (int) from the top of the recipe.
type pos []any

// lineOf is the line of the setting at p in the recipe's YAML, or of the
// nearest setting above it that the recipe has (a default that was filled
// in has no line of its own).
func lineOf(root *yaml.Node, p pos) int {
	if root == nil {
		return 0
	}
	n, line := root, root.Line
	for _, k := range p {
		if n.Kind == yaml.AliasNode {
			// The setting is where the alias is used, not where its
			// anchor's value is written.
			return line
		}
		var next *yaml.Node
		switch k := k.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						line, next = n.Content[i].Line, n.Content[i+1]
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k >= 0 && k < len(n.Content) {
				next = n.Content[k]
				line = next.Line
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return line
}

// at returns err located at the recipe setting p: "line N: err".
func (r *Recipe) at(p pos, err error) error {
	if line := lineOf(r.node, p); line > 0 {
		err = fmt.Errorf("line %d: %w", line, err)
	}
	if r.file != "" {
		err = fmt.Errorf("%s: %w", r.file, err)
	}
	return err
}

// errorf is at with a formatted message.
func (r *Recipe) errorf(p pos, format string, a ...any) error {
	return r.at(p, fmt.Errorf(format, a...))
}

// mentioned returns p extended with the first key of the mapping at p
// whose name the message mentions as a word, or p itself: an error of a
// sub-configuration (dedup, filter) then points at its setting.
func (r *Recipe) mentioned(p pos, msg string) pos {
	n := r.node
	for _, k := range p {
		if n == nil {
			return p
		}
		switch k := k.(type) {
		case string:
			n = mapValue(n, k)
		case int:
			if n.Kind != yaml.SequenceNode || k >= len(n.Content) {
				return p
			}
			n = n.Content[k]
		}
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return p
	}
	words := strings.FieldsFunc(msg, func(c rune) bool { return !(c == '_' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') })
	for i := 0; i+1 < len(n.Content); i += 2 {
		if slices.Contains(words, n.Content[i].Value) {
			return append(append(pos{}, p...), n.Content[i].Value)
		}
	}
	return p
}

// checkMB validates a size in MiB: 0 (the default) up to MaxMB.
func (r *Recipe) checkMB(p pos, name string, mb int64) error {
	if mb < 0 || mb > MaxMB {
		return r.errorf(p, "%s %d: want 0 (the default) to %d MiB (1 TiB)", name, mb, MaxMB)
	}
	return nil
}

// resolve fills defaults, makes input paths absolute and validates.
func (r *Recipe) resolve(baseDir string) error {
	if r.Name == "" {
		return r.errorf(nil, "name is required")
	}
	if !nameRE.MatchString(r.Name) {
		return r.errorf(pos{"name"}, "name %q: use lower-case letters, digits and _", r.Name)
	}
	if r.ShardMB == 0 {
		r.ShardMB = 64
	}
	if _, err := shards.ShardBytes(float64(r.ShardMB)); err != nil {
		return r.errorf(pos{"shard_mb"}, "shard_mb %d: %w", r.ShardMB, err)
	}
	// Left empty when unset (none), so that recipes without the key keep
	// their hash.
	if _, err := shards.CheckTokenCompression(r.TokenCompression); err != nil {
		return r.errorf(pos{"token_compression"}, "token_compression: %w", err)
	}
	if len(r.Sources) == 0 {
		return r.errorf(pos{"sources"}, "no sources")
	}
	names := map[string]*Source{}
	first := map[string]int{}
	mixed := 0
	for i, s := range r.Sources {
		at := func(k ...any) pos { return append(pos{"sources", i}, k...) }
		if s == nil {
			return r.errorf(at(), "source %d is empty", i+1)
		}
		if !nameRE.MatchString(s.Name) {
			return r.errorf(at("name"), "source %d: name %q: use lower-case letters, digits and _", i+1, s.Name)
		}
		if names[s.Name] != nil {
			return r.errorf(at("name"), "source %q listed twice (first at line %d)", s.Name, lineOf(r.node, pos{"sources", first[s.Name], "name"}))
		}
		names[s.Name], first[s.Name] = s, i
		if len(s.Inputs) == 0 {
			return r.errorf(at("inputs"), "source %q: no inputs", s.Name)
		}
		for j, in := range s.Inputs {
			if strings.HasPrefix(in, gomodScheme) || store.Handles(in) { // URLs and paths lists stay as they are
				continue
			}
			if !filepath.IsAbs(in) {
				s.Inputs[j] = filepath.Join(baseDir, in)
			}
		}
		if s.Format == "" {
			s.Format = string(ingest.FormatAuto)
		}
		switch ingest.Format(s.Format) {
		case ingest.FormatAuto, ingest.FormatWARC, ingest.FormatWET, ingest.FormatJSONL, ingest.FormatParquet, ingest.FormatHTML, ingest.FormatText:
		default:
			return r.errorf(at("format"), "source %q: format %q (want auto, warc, wet, jsonl, parquet, html or text)", s.Name, s.Format)
		}
		if err := resolveLangID(s, baseDir); err != nil {
			return r.at(at("langid"), err)
		}
		if s.Tasks < 0 {
			return r.errorf(at("tasks"), "source %q: tasks %d must not be negative", s.Name, s.Tasks)
		}
		if err := r.checkMB(at("task_mb"), fmt.Sprintf("source %q: task_mb", s.Name), s.TaskMB); err != nil {
			return err
		}
		if s.Tasks == 0 && s.TaskMB == 0 {
			s.TaskMB = 512
		}
		if s.Reference {
			if s.Weight != 0 {
				return r.errorf(at("weight"), "source %q: a reference source is not mixed; remove its weight", s.Name)
			}
			if s.Filter != nil {
				return r.errorf(at("filter"), "source %q: a reference source is not filtered; remove its filter", s.Name)
			}
			continue
		}
		mixed++
		if !(s.Weight > 0) || math.IsInf(s.Weight, 0) {
			return r.errorf(at("weight"), "source %q: weight %v must be a positive number (or mark the source reference: true)", s.Name, s.Weight)
		}
		if s.Filter != nil {
			s.Filter.ResolvePaths(baseDir)
			if _, err := s.Filter.Pipeline(); err != nil {
				return r.at(r.filterPos(i, s, err), fmt.Errorf("source %q: %w", s.Name, err))
			}
		}
	}
	if mixed == 0 {
		return r.errorf(pos{"sources"}, "every source is a reference source: nothing to mix")
	}
	if c := r.Classifier; c != nil {
		if err := c.resolve(r, names, baseDir); err != nil {
			return err
		}
	}
	if d := r.Dedup; d != nil {
		if d.Scope == "" {
			d.Scope = dedup.ScopeSource
		}
		if err := d.Options.Validate(); err != nil {
			return r.at(r.mentioned(pos{"dedup"}, err.Error()), err)
		}
		if err := d.Steps.validate(); err != nil {
			return err
		}
		if d.Store != "" && !filepath.IsAbs(d.Store) {
			d.Store = filepath.Join(baseDir, d.Store)
		}
	}
	if r.Tokenizer == nil {
		return r.errorf(nil, "tokenizer is required (name: gpt2, or train: {vocab_size: N})")
	}
	if err := r.Tokenizer.resolve(r, baseDir); err != nil {
		return err
	}
	if t := r.Train; t != nil {
		if err := t.resolveIn(r, baseDir); err != nil {
			return err
		}
	}
	if r.Ablate != nil {
		if err := r.resolveAblate(baseDir); err != nil {
			return err
		}
	}
	return r.resolveExports()
}

// filterPos locates a filter configuration error of source i: the rule it
// names in the rules list, else the setting it mentions, else the filter.
func (r *Recipe) filterPos(i int, s *Source, err error) pos {
	p := pos{"sources", i, "filter"}
	for j, rule := range s.Filter.Rules {
		if strings.Contains(err.Error(), strconv.Quote(rule)) {
			return append(p, "rules", j)
		}
	}
	return r.mentioned(p, err.Error())
}

// inputError locates an error listing source src's inputs at the input
// that fails on its own (a missing file, a glob that matches nothing), or
// at the source's inputs.
func (r *Recipe) inputError(src *Source, err error) error {
	i := slices.Index(r.Sources, src)
	if i < 0 {
		return err
	}
	p := pos{"sources", i, "inputs"}
	for j, in := range src.Inputs {
		if strings.HasPrefix(in, gomodScheme) {
			if _, gerr := resolveGomod(in); gerr != nil {
				return r.at(append(p, j), err)
			}
			continue
		}
		if _, serr := os.Stat(in); serr == nil {
			continue
		}
		if _, eerr := ingest.ExpandInputs(context.Background(), []string{in}); eerr != nil {
			return r.at(append(p, j), err)
		}
	}
	return r.at(p, err)
}

func (c *Classifier) resolve(r *Recipe, names map[string]*Source, baseDir string) error {
	at := func(k ...any) pos { return append(pos{"classifier"}, k...) }
	check := func(what string, list []string, wantRef *bool) error {
		for j, n := range list {
			s := names[n]
			if s == nil {
				return r.errorf(at(what, j), "classifier %s: no source %q", what, n)
			}
			if wantRef != nil && s.Reference != *wantRef {
				if *wantRef {
					return r.errorf(at(what, j), "classifier %s: source %q is mixed; only reference sources can be positives here", what, n)
				}
				return r.errorf(at(what, j), "classifier %s: source %q is a reference source and is not filtered", what, n)
			}
		}
		return nil
	}
	if c.Model != "" {
		if len(c.Positives) > 0 || len(c.Negatives) > 0 {
			return r.errorf(at("model"), "classifier: give either model or positives/negatives, not both")
		}
		if !filepath.IsAbs(c.Model) {
			c.Model = filepath.Join(baseDir, c.Model)
		}
	} else {
		if len(c.Positives) == 0 || len(c.Negatives) == 0 {
			return r.errorf(at(), "classifier: name positives and negatives (sources), or a model file")
		}
		if err := check("positives", c.Positives, nil); err != nil {
			return err
		}
		if err := check("negatives", c.Negatives, nil); err != nil {
			return err
		}
	}
	f := false
	if len(c.ApplyTo) == 0 {
		return r.errorf(at("apply_to"), "classifier: apply_to names no source")
	}
	if err := check("apply_to", c.ApplyTo, &f); err != nil {
		return err
	}
	for _, n := range c.ApplyTo {
		if names[n].Filter == nil {
			// The classifier runs as part of the source's filter step.
			names[n].Filter = filter.DefaultConfig()
			names[n].Filter.Rules = []string{}
		}
	}
	if err := r.checkMB(at("sample_mb"), "classifier: sample_mb", c.SampleMB); err != nil {
		return err
	}
	if c.ChunkBytes < 0 {
		return r.errorf(at("chunk_bytes"), "classifier: chunk_bytes %d must not be negative", c.ChunkBytes)
	}
	if c.MaxIter < 0 {
		return r.errorf(at("max_iter"), "classifier: max_iter %d must not be negative", c.MaxIter)
	}
	if c.Bits != 0 && (c.Bits < 10 || c.Bits > 28) { // filter.Train's range
		return r.errorf(at("bits"), "classifier: bits %d: want 10..28", c.Bits)
	}
	c.defaults()
	if c.Kind != ClassifierLogistic && c.Kind != ClassifierFastText {
		return r.errorf(at("kind"), "classifier: kind %q (want %s or %s)", c.Kind, ClassifierLogistic, ClassifierFastText)
	}
	if _, err := filter.ParseKeep(c.Keep); err != nil {
		return r.errorf(at("keep"), "classifier: %w", err)
	}
	return nil
}

// defaults fills the classifier's unset training settings.
func (c *Classifier) defaults() {
	if c.Kind == "" {
		c.Kind = ClassifierLogistic
	}
	if c.Keep == "" {
		c.Keep = "pareto:9"
	}
	if c.SampleMB == 0 {
		c.SampleMB = 256
	}
	if c.Bits == 0 {
		c.Bits = 20
	}
	if c.C == 0 {
		c.C = 1
	}
	if c.ChunkBytes == 0 {
		c.ChunkBytes = 2000
	}
	if c.HoldOut == 0 {
		c.HoldOut = 0.2
	}
	if c.MaxIter == 0 {
		c.MaxIter = 500
	}
}

func (t *Tokenizer) resolve(r *Recipe, baseDir string) error {
	at := func(k ...any) pos { return append(pos{"tokenizer"}, k...) }
	switch {
	case t.Name != "" && t.Train != nil:
		return r.errorf(at(), "tokenizer: give name or train, not both")
	case t.Train != nil:
		if t.Train.VocabSize < 257 || t.Train.VocabSize > MaxVocab {
			return r.errorf(at("train", "vocab_size"), "tokenizer: train vocab_size %d: want 257 (256 bytes and end-of-text) to %d", t.Train.VocabSize, MaxVocab)
		}
		if err := r.checkMB(at("train", "sample_mb"), "tokenizer: train sample_mb", t.Train.SampleMB); err != nil {
			return err
		}
		if t.Train.SampleMB == 0 {
			t.Train.SampleMB = 64
		}
	case t.Name != "":
		if isBuiltinTokenizer(t.Name) {
			return nil
		}
		if t.Specials != "" && !strings.Contains(t.Specials, "=") && !filepath.IsAbs(t.Specials) {
			t.Specials = filepath.Join(baseDir, t.Specials) // a file beside the recipe
		}
		raw := t.Name
		if !filepath.IsAbs(t.Name) {
			t.Name = filepath.Join(baseDir, t.Name)
		}
		if _, err := os.Stat(t.Name); errors.Is(err, os.ErrNotExist) {
			// A typo (gpt7) is likelier than a missing file: list the names.
			return r.at(at("name"), fmt.Errorf("%w (relative to the recipe's directory)", tokenize.UnknownError(raw)))
		}
	default:
		return r.errorf(at(), "tokenizer: give name (gpt2, ...) or train: {vocab_size: N}")
	}
	return nil
}

// resolve fills the training defaults (as smelt explain shows them).
func (t *Train) resolve(baseDir string) error { return t.resolveIn(&Recipe{}, baseDir) }

// resolveIn fills the training defaults and validates, locating errors in r.
func (t *Train) resolveIn(r *Recipe, baseDir string) error {
	at := func(k ...any) pos { return append(pos{"train"}, k...) }
	if t.Config == "" {
		t.Config = "tiny"
	}
	if !isTrainPreset(t.Config) {
		raw := t.Config
		if !filepath.IsAbs(t.Config) {
			t.Config = filepath.Join(baseDir, t.Config)
		}
		if _, err := os.Stat(t.Config); errors.Is(err, os.ErrNotExist) {
			return r.errorf(at("config"), "train: config %q is neither a preset (%s) nor an existing model YAML file (relative to the recipe's directory)", raw, strings.Join(trainPresets(), ", "))
		}
	}
	d := defaultTrainOptions()
	if t.Steps == 0 {
		t.Steps = d.Steps
	}
	if t.BatchSize == 0 {
		t.BatchSize = d.BatchSize
	}
	if t.LR == 0 {
		t.LR = d.LR
	}
	if t.MinLR == 0 {
		t.MinLR = d.MinLR
	}
	if t.Warmup == 0 {
		t.Warmup = min(d.WarmupSteps, t.Steps/10)
	}
	if t.WeightDecay == 0 {
		t.WeightDecay = d.WeightDecay
	}
	if t.GradClip == 0 {
		t.GradClip = d.GradClip
	}
	if t.ValBatches == 0 {
		t.ValBatches = d.ValBatches
	}
	if t.ValFraction == nil {
		f := 0.01
		t.ValFraction = &f
	}
	if t.Seed == 0 {
		t.Seed = d.Seed
	}
	if t.Threads == 0 {
		t.Threads = 1
	}
	for _, f := range []struct {
		key string
		v   int
	}{{"steps", t.Steps}, {"batch_size", t.BatchSize}, {"seq_len", t.SeqLen}, {"threads", t.Threads}, {"sample_tokens", t.SampleTokens}, {"warmup", t.Warmup}, {"val_every", t.ValEvery}, {"val_batches", t.ValBatches},
		{"batch_tokens", t.BatchTokens}, {"decay_steps", t.DecaySteps}, {"eval_every", t.EvalEvery}, {"keep_checkpoints", t.KeepCheckpoints}} {
		if f.v < 0 {
			return r.errorf(at(f.key), "train: %s %d must not be negative", f.key, f.v)
		}
	}
	// The token budget, steps x batch_size x (seq_len+1), is what the
	// report and the mix plan count with: it must fit an int64.
	if budget := float64(t.Steps) * float64(t.BatchSize) * float64(t.SeqLen+1); budget > math.MaxInt64/2 {
		return r.errorf(at("steps"), "train: steps %d x batch_size %d x seq_len %d tokens is too many", t.Steps, t.BatchSize, t.SeqLen)
	}
	if f := *t.ValFraction; !(f >= 0 && f < 1) {
		return r.errorf(at("val_fraction"), "train: val_fraction %v must be in [0, 1)", f)
	}
	if t.BatchTokens > 0 && t.SeqLen > 0 && t.BatchTokens%(t.BatchSize*t.SeqLen) != 0 {
		return r.errorf(at("batch_tokens"), "train: batch_tokens %d is not a multiple of batch_size x seq_len = %d", t.BatchTokens, t.BatchSize*t.SeqLen)
	}
	names := map[string]bool{}
	for i := range t.Eval {
		e := &t.Eval[i]
		if !nameRE.MatchString(e.Name) || names[e.Name] {
			return r.errorf(at("eval", i, "name"), "train: eval set name %q: want a unique lower-case name (letters, digits, _)", e.Name)
		}
		names[e.Name] = true
		if len(e.Paths) == 0 {
			return r.errorf(at("eval", i, "paths"), "train: eval set %q has no paths", e.Name)
		}
		for j, p := range e.Paths {
			if !filepath.IsAbs(p) {
				p = filepath.Join(baseDir, p)
			}
			if _, err := os.Stat(p); err != nil {
				return r.errorf(at("eval", i, "paths", j), "train: eval set %q: %v", e.Name, err)
			}
			e.Paths[j] = p
		}
	}
	return nil
}

// YAML returns the resolved recipe as YAML.
func (r *Recipe) YAML() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("encode recipe: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Hash is the SHA-256 of the resolved recipe's YAML.
func (r *Recipe) Hash() (string, error) {
	y, err := r.redactedYAML()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(y)
	return hex.EncodeToString(sum[:]), nil
}

// LoadRecipe reads and parses a recipe file; relative inputs are relative to
// the file's directory. A name of a bundled recipe (gpt3, fineweb, demo)
// that is not a file loads the bundled one.
func LoadRecipe(path string) (*Recipe, error) {
	data, err := os.ReadFile(path)
	base := filepath.Dir(path)
	if err != nil {
		if b, ok := Bundled(strings.TrimSuffix(filepath.Base(path), ".yaml")); ok && errors.Is(err, os.ErrNotExist) && !strings.ContainsRune(path, os.PathSeparator) {
			data, base = b, "."
		} else {
			return nil, fmt.Errorf("recipe: %w", err)
		}
	}
	if base, err = filepath.Abs(base); err != nil {
		return nil, err
	}
	r, err := ParseRecipe(data, base)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r.file = path
	return r, nil
}
