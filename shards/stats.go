package shards

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// StatsName is the file name of a stage's statistics, beside its manifest.
const StatsName = "stats.json"

// Count is a number of documents (or records) and their bytes.
type Count struct {
	Docs  int64 `json:"docs"`
	Bytes int64 `json:"bytes"`
}

// Add counts one item of n bytes.
func (c *Count) Add(n int64) { c.Docs++; c.Bytes += n }

// Merge adds o into c.
func (c *Count) Merge(o Count) { c.Docs += o.Docs; c.Bytes += o.Bytes }

// Metric is a running summary of a measured value (Welford's algorithm), so
// that per-task metrics merge exactly.
type Metric struct {
	Unit string  `json:"unit,omitempty"`
	N    int64   `json:"n"`
	Sum  float64 `json:"sum"`
	Mean float64 `json:"mean"`
	M2   float64 `json:"m2"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
}

// Add records one value.
func (m *Metric) Add(x float64) {
	if m.N == 0 || x < m.Min {
		m.Min = x
	}
	if m.N == 0 || x > m.Max {
		m.Max = x
	}
	m.N++
	m.Sum += x
	d := x - m.Mean
	m.Mean += d / float64(m.N)
	m.M2 += d * (x - m.Mean)
}

// Merge combines o into m (Chan et al.'s parallel update).
func (m *Metric) Merge(o Metric) {
	if o.N == 0 {
		return
	}
	if m.N == 0 {
		unit := m.Unit
		*m = o
		if unit != "" {
			m.Unit = unit
		}
		return
	}
	n := m.N + o.N
	d := o.Mean - m.Mean
	m.M2 += o.M2 + d*d*float64(m.N)*float64(o.N)/float64(n)
	m.Mean += d * float64(o.N) / float64(n)
	m.Sum += o.Sum
	m.Min = math.Min(m.Min, o.Min)
	m.Max = math.Max(m.Max, o.Max)
	m.N = n
}

// Std is the population standard deviation.
func (m Metric) Std() float64 {
	if m.N == 0 {
		return 0
	}
	return math.Sqrt(m.M2 / float64(m.N))
}

// Histogram counts values into equal-width bins over [Lo, Hi); values
// outside are clamped into the first or last bin.
type Histogram struct {
	Lo     float64 `json:"lo"`
	Hi     float64 `json:"hi"`
	Counts []int64 `json:"counts"`
}

// NewHistogram makes a histogram of n bins over [lo, hi).
func NewHistogram(lo, hi float64, n int) *Histogram {
	return &Histogram{Lo: lo, Hi: hi, Counts: make([]int64, n)}
}

// Add counts x.
func (h *Histogram) Add(x float64) {
	n := len(h.Counts)
	if n == 0 || math.IsNaN(x) {
		return
	}
	i := int(float64(n) * (x - h.Lo) / (h.Hi - h.Lo))
	if i < 0 {
		i = 0
	}
	if i >= n {
		i = n - 1
	}
	h.Counts[i]++
}

// Merge adds o's counts; both must have the same bins.
func (h *Histogram) Merge(o *Histogram) error {
	if o == nil {
		return nil
	}
	if h.Lo != o.Lo || h.Hi != o.Hi || len(h.Counts) != len(o.Counts) {
		return errors.New("shards: merging histograms with different bins")
	}
	for i, c := range o.Counts {
		h.Counts[i] += c
	}
	return nil
}

// Stats is what one run of a stage counted. Every input item is accounted
// for: In = Out + the sum of Dropped + the sum of Errors (see Balanced).
// It is saved whole as stats.json and merges exactly.
type Stats struct {
	Stage string `json:"stage"`
	// In counts items entering the stage, Out the documents it kept.
	In  Count `json:"in"`
	Out Count `json:"out"`
	// Dropped counts items not kept, by typed reason (skips, filter rules, duplicates).
	Dropped map[string]Count `json:"dropped"`
	// Errors counts broken items, by typed error kind.
	Errors map[string]Count `json:"errors"`
	// Langs counts kept documents per language.
	Langs map[string]int64 `json:"langs,omitempty"`
	// Sources counts kept documents per source.
	Sources map[string]Count `json:"sources,omitempty"`
	// Metrics are stage-specific running summaries (for example words per document).
	Metrics map[string]*Metric `json:"metrics,omitempty"`
	// Histograms are stage-specific distributions (for example the quality score).
	Histograms map[string]*Histogram `json:"histograms,omitempty"`
	// Modified counts documents whose text a stage changed, by rule, with
	// the bytes it removed.
	Modified map[string]Count `json:"modified,omitempty"`
	// ErrorSamples keeps the first few error messages, with file and offset.
	ErrorSamples []string `json:"error_samples,omitempty"`
}

// MaxErrorSamples bounds Stats.ErrorSamples.
const MaxErrorSamples = 50

// NewStats returns empty stats for a stage.
func NewStats(stage string) *Stats {
	return &Stats{Stage: stage, Dropped: map[string]Count{}, Errors: map[string]Count{}}
}

func addTo(m *map[string]Count, key string, c Count) {
	if *m == nil {
		*m = map[string]Count{}
	}
	v := (*m)[key]
	v.Merge(c)
	(*m)[key] = v
}

// Declare makes reasons show up with zero counts, so that reports list every
// rule or reason a stage can produce.
func (s *Stats) Declare(dropReasons, errorKinds []string) {
	for _, r := range dropReasons {
		addTo(&s.Dropped, r, Count{})
	}
	for _, k := range errorKinds {
		addTo(&s.Errors, k, Count{})
	}
}

// Drop counts a dropped item.
func (s *Stats) Drop(reason string, bytes int64) { addTo(&s.Dropped, reason, Count{1, bytes}) }

// Error counts a broken item and keeps a sample of its message.
func (s *Stats) Error(kind string, bytes int64, msg string) {
	addTo(&s.Errors, kind, Count{1, bytes})
	if len(s.ErrorSamples) < MaxErrorSamples && msg != "" {
		s.ErrorSamples = append(s.ErrorSamples, msg)
	}
}

// Keep counts a kept document.
func (s *Stats) Keep(d *Document) {
	n := DocBytes(d)
	s.Out.Add(n)
	if s.Langs == nil {
		s.Langs = map[string]int64{}
	}
	s.Langs[d.Lang]++
	addTo(&s.Sources, d.Source, Count{1, n})
}

// Metric returns the named metric, creating it.
func (s *Stats) Metric(name, unit string) *Metric {
	if s.Metrics == nil {
		s.Metrics = map[string]*Metric{}
	}
	m := s.Metrics[name]
	if m == nil {
		m = &Metric{Unit: unit}
		s.Metrics[name] = m
	}
	return m
}

// Histogram returns the named histogram, creating it with the given bins.
func (s *Stats) Histogram(name string, lo, hi float64, bins int) *Histogram {
	if s.Histograms == nil {
		s.Histograms = map[string]*Histogram{}
	}
	h := s.Histograms[name]
	if h == nil {
		h = NewHistogram(lo, hi, bins)
		s.Histograms[name] = h
	}
	return h
}

// Modify counts a document whose text rule changed, removing removed bytes.
func (s *Stats) Modify(rule string, removed int64) { addTo(&s.Modified, rule, Count{1, removed}) }

// Merge adds o into s exactly.
func (s *Stats) Merge(o *Stats) error {
	s.In.Merge(o.In)
	s.Out.Merge(o.Out)
	for k, v := range o.Dropped {
		addTo(&s.Dropped, k, v)
	}
	for k, v := range o.Errors {
		addTo(&s.Errors, k, v)
	}
	for k, v := range o.Modified {
		addTo(&s.Modified, k, v)
	}
	for k, v := range o.Sources {
		addTo(&s.Sources, k, v)
	}
	for k, v := range o.Langs {
		if s.Langs == nil {
			s.Langs = map[string]int64{}
		}
		s.Langs[k] += v
	}
	for k, v := range o.Metrics {
		s.Metric(k, v.Unit).Merge(*v)
	}
	for k, v := range o.Histograms {
		if err := s.Histogram(k, v.Lo, v.Hi, len(v.Counts)).Merge(v); err != nil {
			return fmt.Errorf("histogram %s: %w", k, err)
		}
	}
	for _, e := range o.ErrorSamples {
		if len(s.ErrorSamples) < MaxErrorSamples {
			s.ErrorSamples = append(s.ErrorSamples, e)
		}
	}
	return nil
}

// SumCounts adds up a map of counts.
func SumCounts(m map[string]Count) Count {
	var t Count
	for _, v := range m {
		t.Merge(v)
	}
	return t
}

// Balanced checks that every input item is accounted for:
// In.Docs == Out.Docs + dropped + errors.
func (s *Stats) Balanced() error {
	d, e := SumCounts(s.Dropped), SumCounts(s.Errors)
	if s.In.Docs != s.Out.Docs+d.Docs+e.Docs {
		return fmt.Errorf("stats of %s do not add up: %d in, %d kept + %d dropped + %d errors",
			s.Stage, s.In.Docs, s.Out.Docs, d.Docs, e.Docs)
	}
	return nil
}

// SortedKeys returns a map's keys in order, for stable printing.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// WriteStats writes s into dir atomically as stats.json.
func WriteStats(dir string, s *Stats) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode stats: %w", err)
	}
	return WriteFileAtomic(filepath.Join(dir, StatsName), append(data, '\n'))
}

// ReadStats reads dir's stats.json.
func ReadStats(dir string) (*Stats, error) {
	data, err := os.ReadFile(filepath.Join(dir, StatsName))
	if err != nil {
		return nil, err
	}
	s := NewStats("")
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, StatsName), err)
	}
	return s, nil
}
