package filter

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/smelt-dev/smelt/shards"
)

// Stage is a configured filter: heuristic rules, then optionally the
// quality classifier and its keep policy.
type Stage struct {
	Pipeline Pipeline
	// Model, if set, scores every document (kept and dropped) into
	// Document.Quality; Keep then decides documents the rules kept.
	Model *Model
	// Scorer, used when Model is nil, scores documents the same way (a
	// FastTextClassifier).
	Scorer Scorer
	Keep   Keep
	// Annotate keeps every document, recording the drops it would have had
	// in Meta under MetaSignals (see Config.Annotate).
	Annotate bool

	mu      sync.Mutex
	removed map[*shards.Document]map[string]int
	counts  map[*shards.Document]map[string]int
}

// Reasons lists every drop reason the stage can produce.
func (s *Stage) Reasons() []string {
	rs := s.Pipeline.Reasons()
	if s.scorer() != nil {
		switch s.Keep.Kind {
		case "pareto":
			rs = append(rs, QualityPareto)
		case "threshold":
			rs = append(rs, QualityThreshold)
		}
	}
	return rs
}

// Process decides one document; it is safe for concurrent use. The
// returned document has Drop set when dropped, the rewritten text when a
// Modifier changed it, and Quality when a model is set.
func (s *Stage) Process(d *shards.Document) (*shards.Document, error) {
	if s.Annotate {
		return s.annotate(d)
	}
	o := s.Pipeline.Apply(d)
	if sc := s.scorer(); sc != nil {
		d.Quality, d.HasQuality = sc.Score(d.Text), true
		if d.Drop == nil {
			if reason, value := s.Keep.Decide(d.ID, d.Quality); reason != "" {
				d.Drop = &shards.Drop{Reason: reason, Value: value}
			}
		}
	}
	s.hold(&s.removed, d, o.Removed)
	s.hold(&s.counts, d, o.Counts)
	return d, nil
}

// hold remembers a document's per-rule numbers until Observe.
func (s *Stage) hold(m *map[*shards.Document]map[string]int, d *shards.Document, v map[string]int) {
	if len(v) == 0 {
		return
	}
	s.mu.Lock()
	if *m == nil {
		*m = map[*shards.Document]map[string]int{}
	}
	(*m)[d] = v
	s.mu.Unlock()
}

func (s *Stage) scorer() Scorer {
	if s.Model != nil {
		return s.Model
	}
	return s.Scorer
}

// Histogram and metric names this stage adds to its Stats.
const (
	StatQualityKept    = "filter/quality_kept"
	StatQualityDropped = "filter/quality_dropped"
	StatQuality        = "filter/quality"
)

// Observe records stage statistics for one routed document: text removed by
// modifying rules, the Annotators' counts (as metrics), and the quality score histograms for kept and dropped
// documents. Call it in input order (RunDocStage does).
func (s *Stage) Observe(st *shards.Stats, in, out *shards.Document) {
	s.mu.Lock()
	removed := s.removed[out]
	delete(s.removed, out)
	counts := s.counts[out]
	delete(s.counts, out)
	s.mu.Unlock()
	for _, rule := range sortedStrings(removed) {
		st.Modify(rule, int64(removed[rule]))
	}
	for _, k := range sortedStrings(counts) {
		st.Metric(k, "count").Add(float64(counts[k]))
	}
	if out.HasQuality {
		name := StatQualityKept
		if out.Drop != nil {
			name = StatQualityDropped
		}
		st.Histogram(name, 0, 1, 20).Add(out.Quality)
		st.Metric(StatQuality, "score").Add(out.Quality)
	}
}

func sortedStrings(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && ks[j] < ks[j-1]; j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
	return ks
}

// RunOptions configures Run.
type RunOptions struct {
	Inputs      []string
	Out         string
	Workers     int
	TargetBytes int64
	// Settings describe the rules and model for the run's fingerprint, so
	// that a run with other settings never resumes this one.
	Settings any
	Progress func(docs, bytes, totalDocs, totalBytes int64)
}

// Run filters document shards with shards.RunDocStage: kept documents go to
// opt.Out, dropped ones (with reason and value) to opt.Out/dropped.
func (s *Stage) Run(ctx context.Context, opt RunOptions) (*shards.Stats, error) {
	if len(opt.Inputs) == 0 {
		return nil, fmt.Errorf("filter: no inputs")
	}
	return shards.RunDocStage(ctx, shards.DocStageConfig{
		Stage:       "filter",
		Inputs:      opt.Inputs,
		Out:         opt.Out,
		Workers:     opt.Workers,
		TargetBytes: opt.TargetBytes,
		Settings:    opt.Settings,
		Process:     s.Process,
		Observe:     s.Observe,
		Declare:     s.Reasons(),
		Progress:    opt.Progress,
	})
}

// MetaSignals is the Meta key under which annotate mode records, per drop
// reason that applied, its value.
const MetaSignals = "signals"

// annotate runs every rule on d (each as its own pipeline, so that one
// drop does not stop the others; a modifying rule still rewrites the
// text), scores it, and keeps it with the drops it would have had in Meta.
func (s *Stage) annotate(d *shards.Document) (*shards.Document, error) {
	sig := map[string]string{}
	removed, counts := map[string]int{}, map[string]int{}
	for _, r := range s.Pipeline.Rules {
		one := Pipeline{Rules: []Rule{r}}
		o := one.Apply(d)
		if d.Drop != nil {
			sig[d.Drop.Reason] = d.Drop.Value
			d.Drop = nil
		}
		for k, v := range o.Removed {
			removed[k] += v
		}
		for k, v := range o.Counts {
			counts[k] += v
		}
	}
	if sc := s.scorer(); sc != nil {
		d.Quality, d.HasQuality = sc.Score(d.Text), true
		if reason, value := s.Keep.Decide(d.ID, d.Quality); reason != "" {
			sig[reason] = value
		}
	}
	d.Meta = setMetaKey(d.Meta, MetaSignals, sig)
	s.hold(&s.removed, d, removed)
	s.hold(&s.counts, d, counts)
	return d, nil
}

// Signals returns the drops annotate mode recorded in a document's Meta
// (nil when there are none or the document was not annotated).
func Signals(d *shards.Document) map[string]string {
	if d.Meta == "" {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(d.Meta), &m) != nil {
		return nil
	}
	var sig map[string]string
	if raw, ok := m[MetaSignals]; ok && json.Unmarshal(raw, &sig) == nil {
		return sig
	}
	return nil
}
