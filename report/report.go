package report

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/smelt-dev/smelt/filter"
	"github.com/smelt-dev/smelt/shards"
)

//go:embed templates
var templateFS embed.FS

var funcs = template.FuncMap{
	"bytes": humanBytes,
	"num":   func(n int64) string { return fmtNum(float64(n)) },
	"pct": func(a, b int64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(b))
	},
	"f1":       func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"f2":       func(v float64) string { return fmt.Sprintf("%.2f", v) },
	"f3":       func(v float64) string { return fmt.Sprintf("%.3f", v) },
	"g4":       func(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) },
	"tok":      shards.FormatTokens,
	"add":      func(a, b int) int { return a + b },
	"div":      func(a, b int64) int64 { return a / max(b, 1) },
	"mul100":   func(v float64) float64 { return 100 * v },
	"isNaN":    math.IsNaN,
	"int64len": func(n int) int64 { return int64(n) },
	"int64":    func(v float64) int64 { return int64(v) },
}

var reportTmpl = template.Must(template.New("report.html").Funcs(funcs).ParseFS(templateFS, "templates/report.html", "templates/charts.html", "templates/style.html"))

// Report is the data the HTML report shows.
type Report struct {
	Title     string
	Generated string
	Run       *Run
	// Headline is the first screen: raw to final, yield, duplicates, the
	// top drop reasons, tokens and passes per source, exports (nil when
	// the directory holds no counts).
	Headline *Headline
	Funnel   []FunnelRow
	// FunnelChart shows documents in and kept per step.
	FunnelChart *HBarChart
	// Sources lists each source's kept documents and bytes after every step.
	SourceSteps []string
	Sources     []SourceRow
	Drops       []DropRow
	// ZeroDrops lists, per step, the declared reasons that dropped nothing.
	ZeroDrops []ZeroDrops
	// ZeroDropCount is the number of reasons in ZeroDrops.
	ZeroDropCount int
	DropChart     *HBarChart
	Quality       []QualityChart
	// Langs is one chart of the kept documents' languages, one series per
	// step that counted languages.
	Langs     *LangTable
	Dedup     []DedupSection
	Tokens    *HBarChart
	TokenRows []TokenRow
	Plan      *MixPlan
	Training  []TrainSection
	// Ablation is the ablate step's table and curves (ablation.go).
	Ablation *AblationSection
	// Metrics lists every step's stage-specific metrics.
	Metrics []MetricRow
	// Decontam lists the steps that ran the decontam or pii filter rules.
	Decontam []DecontamSection
	// Notes list what the directories did not hold.
	Notes []string
}

// FunnelRow is one step's documents and bytes in and out.
type FunnelRow struct {
	Step, Stage, Kind               string
	In, Out, Dropped, Errors        shards.Count
	HasStats, HasManifest           bool
	Rows, DataBytes, Tokens, OnDisk int64
	Balanced                        string
	DroppedRows                     int64
}

// SourceRow is one source's kept documents after each step.
type SourceRow struct {
	Source string
	Cells  []shards.Count
}

// DropRow is one drop reason of one step, with an example.
type DropRow struct {
	Step, Reason string
	Count        shards.Count
	Share        string // of the step's input
	Example      *Doc
	// Stored says the step keeps its dropped documents (ingest's skipped
	// records are only counted).
	Stored bool
}

// ZeroDrops are a step's declared drop reasons with no documents.
type ZeroDrops struct {
	Step    string
	Reasons []string
}

// QualityChart is a step's quality-score histogram, kept versus dropped.
type QualityChart struct {
	Step          string
	Chart         *HistChart
	Kept, Dropped int64
	// ByPolicy says Dropped counts only the documents the keep policy
	// dropped (read from the dropped side output); otherwise it counts the
	// documents every rule dropped.
	ByPolicy bool
	// RuleDropped counts the scored documents the rules dropped, left out
	// of the chart when ByPolicy.
	RuleDropped int64
	Mean, Std   float64
	// KeepByPolicy counts the documents dropped by the quality keep policy.
	Pareto, Threshold shards.Count
	// Policy is the keep policy drawn over the histogram ("" if unknown).
	Policy string
	// Half is the lowest score bin where at least half the scored
	// documents were kept ("" if none).
	Half string
}

// LangTable is the languages of the documents each step kept.
type LangTable struct {
	Steps []string
	Chart *HBarChart
	// Total is the documents of the first step.
	Total int64
}

// DedupSection is a dedup step's clusters.
type DedupSection struct {
	Step string
	// In and Dups are the documents deduplicated and those dropped as
	// duplicates (from stats.json).
	In, Dups   int64
	HasStats   bool
	SizeChart  *HistChart
	Similarity *HistChart
	Clusters   *Step
}

// TokenRow is one source's tokens in a token-shard step.
type TokenRow struct {
	Step, Source string
	Rows, Tokens int64
	DataBytes    int64
}

// MetricRow is one stage-specific metric of a step.
type MetricRow struct {
	Step, Name string
	M          *shards.Metric
	Std        float64
}

// TrainSection is one training run's curves.
type TrainSection struct {
	Step       string
	Chart      *LineChart
	Steps      int
	FirstLoss  float64
	LastLoss   float64
	LastVal    float64
	BestVal    float64
	TokensPerS float64
	// Evals are the external eval sets (train --eval, a recipe's eval:)
	// with their last scores, in name order.
	Evals []TrainEval
}

// TrainEval is one eval set's last score in a training run.
type TrainEval struct {
	Name        string
	Step        int
	Loss        float64
	BitsPerByte float64
}

// Names of the statistics the report draws, as the stages write them.
const (
	histQualityKept    = filter.StatQualityKept
	histQualityDropped = filter.StatQualityDropped
	histClusterSize    = "dedup/cluster_size"
	histSimilarity     = "dedup/minhash_similarity"
	reasonPareto       = filter.QualityPareto
	reasonThreshold    = filter.QualityThreshold
	// maxExampleScan bounds the dropped documents read per step to find
	// an example of every reason.
	maxExampleScan = 200_000
	// topDrops is the number of drop reasons the drops chart shows.
	topDrops = 12
)

// Build gathers the report's data. It reads the dropped side outputs for
// one example per drop reason (at most maxExampleScan documents per step).
func Build(ctx context.Context, run *Run) (*Report, error) {
	r := &Report{Run: run, Title: filepath.Base(filepath.Clean(run.Path)), Generated: time.Now().UTC().Format(time.RFC3339), Plan: run.Plan}
	var labels []string
	var vals [][]float64
	for _, st := range run.Steps {
		f := FunnelRow{Step: st.Name, Stage: st.Stage(), Kind: st.Kind()}
		if m := st.Manifest; m != nil {
			f.HasManifest = true
			f.Rows, f.DataBytes, f.Tokens, f.OnDisk = m.Totals.Rows, m.Totals.DataBytes, m.Totals.Tokens, m.Totals.Bytes
		}
		if st.Dropped != nil {
			f.DroppedRows = st.Dropped.Totals.Rows
		}
		if s := st.Stats; s != nil {
			f.HasStats = true
			f.In, f.Out, f.Dropped, f.Errors = s.In, s.Out, shards.SumCounts(s.Dropped), shards.SumCounts(s.Errors)
			if err := s.Balanced(); err != nil {
				f.Balanced = err.Error()
			}
			if f.HasManifest {
				// A step that writes no shards (the classifier trains a
				// model, train a checkpoint) keeps no documents: it has
				// no bars in the documents funnel.
				labels = append(labels, st.Name)
				vals = append(vals, []float64{float64(s.In.Docs), float64(s.Out.Docs)})
			}
		}
		r.Funnel = append(r.Funnel, f)
	}
	if len(labels) > 0 {
		r.FunnelChart = NewHBarChart("funnel", []string{"documents in", "documents kept"}, labels, vals, func(v float64) string { return fmtNum(v) })
	} else {
		r.Notes = append(r.Notes, "No step has a stats.json: the funnel shows the manifests' row counts only.")
	}
	if run.PlanErr != "" {
		r.Notes = append(r.Notes, "No epochs table: "+run.PlanErr)
	}
	r.buildSources()
	if err := r.buildDrops(ctx); err != nil {
		return nil, err
	}
	if err := r.buildQuality(ctx); err != nil {
		return nil, err
	}
	r.buildLangs()
	r.buildDedup()
	r.buildTokens()
	r.buildHeadline()
	r.buildTraining()
	r.buildAblation()
	r.buildDecontam()
	for _, st := range run.Steps {
		if st.Stats == nil {
			continue
		}
		for _, k := range shards.SortedKeys(st.Stats.Metrics) {
			m := st.Stats.Metrics[k]
			if isDecontamMetric(k) {
				continue
			}
			r.Metrics = append(r.Metrics, MetricRow{Step: st.Name, Name: k, M: m, Std: m.Std()})
		}
	}
	return r, nil
}

func (r *Report) buildSources() {
	srcs := map[string]bool{}
	for _, st := range r.Run.Steps {
		if st.Kind() != shards.KindDocuments {
			continue
		}
		r.SourceSteps = append(r.SourceSteps, st.Name)
		for k := range sourceCounts(st) {
			srcs[k] = true
		}
	}
	for _, src := range shards.SortedKeys(srcs) {
		row := SourceRow{Source: src}
		for _, st := range r.Run.Steps {
			if st.Kind() == shards.KindDocuments {
				row.Cells = append(row.Cells, sourceCounts(st)[src])
			}
		}
		r.Sources = append(r.Sources, row)
	}
}

// sourceCounts is a document step's kept documents and bytes per source.
func sourceCounts(st *Step) map[string]shards.Count {
	if st.Stats != nil && len(st.Stats.Sources) > 0 {
		return st.Stats.Sources
	}
	m := map[string]shards.Count{}
	if st.Manifest != nil {
		for k, v := range st.Manifest.Sources {
			m[k] = shards.Count{Docs: v.Rows, Bytes: v.DataBytes}
		}
	}
	return m
}

func (r *Report) buildDrops(ctx context.Context) error {
	var labels []string
	var vals [][]float64
	for _, st := range r.Run.Steps {
		if st.Stats == nil {
			continue
		}
		want := map[string]bool{}
		for _, k := range shards.SortedKeys(st.Stats.Dropped) {
			if st.Stats.Dropped[k].Docs > 0 {
				want[k] = true
			}
		}
		examples, err := findExamples(ctx, st, want)
		if err != nil {
			return err
		}
		keys := shards.SortedKeys(st.Stats.Dropped)
		sort.SliceStable(keys, func(i, j int) bool { return st.Stats.Dropped[keys[i]].Docs > st.Stats.Dropped[keys[j]].Docs })
		var zero []string
		for _, k := range keys {
			c := st.Stats.Dropped[k]
			if c.Docs == 0 {
				zero = append(zero, k)
				continue
			}
			r.Drops = append(r.Drops, DropRow{Step: st.Name, Reason: k, Count: c, Share: funcs["pct"].(func(a, b int64) string)(c.Docs, st.Stats.In.Docs), Example: examples[k], Stored: st.Dropped != nil})
		}
		if len(zero) > 0 {
			r.ZeroDrops = append(r.ZeroDrops, ZeroDrops{Step: st.Name, Reasons: zero})
			r.ZeroDropCount += len(zero)
		}
	}
	// The chart: the topDrops largest reasons of all steps, on a log
	// scale, so that a rule dropping 5 documents beside one dropping 700
	// is still a bar one can read; the rest summed in one row.
	top := append([]DropRow(nil), r.Drops...)
	sort.SliceStable(top, func(i, j int) bool { return top[i].Count.Docs > top[j].Count.Docs })
	var rest, restN int64
	for i, d := range top {
		if i >= topDrops {
			rest += d.Count.Docs
			restN++
			continue
		}
		labels = append(labels, d.Step+": "+d.Reason)
		vals = append(vals, []float64{float64(d.Count.Docs)})
	}
	if rest > 0 {
		labels = append(labels, fmt.Sprintf("%d other reasons", restN))
		vals = append(vals, []float64{float64(rest)})
	}
	if len(labels) > 0 {
		r.DropChart = NewHBarChartLog("drops", []string{"documents dropped (log scale)"}, labels, vals, func(v float64) string { return fmtNum(v) })
	}
	return nil
}

// findExamples reads a step's dropped side output for the first document
// of every wanted reason, reading at most maxExampleScan documents.
func findExamples(ctx context.Context, st *Step, want map[string]bool) (map[string]*Doc, error) {
	out := map[string]*Doc{}
	if st.Dropped == nil || len(want) == 0 {
		return out, nil
	}
	set := newDocSet(st.Name, "dropped", filepath.Join(st.Dir, shards.DroppedDir), st.Dropped)
	const page = 1024
	for lo := int64(0); lo < min(set.Rows(), maxExampleScan) && len(out) < len(want); lo += page {
		docs, err := set.Read(ctx, lo, lo+page)
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			if d.Drop != nil && want[d.Drop.Reason] && out[d.Drop.Reason] == nil {
				out[d.Drop.Reason] = d
			}
		}
	}
	return out, nil
}

func (r *Report) buildQuality(ctx context.Context) error {
	for _, st := range r.Run.Steps {
		if st.Stats == nil {
			continue
		}
		k, d := st.Stats.Histograms[histQualityKept], st.Stats.Histograms[histQualityDropped]
		if k == nil && d == nil {
			continue
		}
		if k == nil {
			k = &shards.Histogram{Lo: d.Lo, Hi: d.Hi, Counts: make([]int64, len(d.Counts))}
		}
		if d == nil {
			d = &shards.Histogram{Lo: k.Lo, Hi: k.Hi, Counts: make([]int64, len(k.Counts))}
		}
		if len(k.Counts) != len(d.Counts) || k.Lo != d.Lo || k.Hi != d.Hi {
			r.Notes = append(r.Notes, fmt.Sprintf("%s: the kept and dropped quality histograms have different bins; not drawn.", st.Name))
			continue
		}
		q := QualityChart{Step: st.Name, Pareto: st.Stats.Dropped[reasonPareto], Threshold: st.Stats.Dropped[reasonThreshold]}
		// Kept versus dropped by the keep policy only: the documents the
		// rules dropped (the language rule, most of them, on a
		// multilingual crawl) say nothing about the classifier.
		dropName := "dropped (any rule)"
		if pd, n, ok := policyDropped(ctx, st, k); ok {
			for i := range d.Counts {
				q.RuleDropped += d.Counts[i]
			}
			q.RuleDropped -= n
			d = pd
			q.ByPolicy, dropName = true, "dropped by the keep policy"
		}
		rate := make([]float64, len(k.Counts))
		for i := range k.Counts {
			q.Kept += k.Counts[i]
			q.Dropped += d.Counts[i]
			if n := k.Counts[i] + d.Counts[i]; n > 0 {
				rate[i] = float64(k.Counts[i]) / float64(n)
				if q.Half == "" && rate[i] >= 0.5 {
					w := (k.Hi - k.Lo) / float64(len(k.Counts))
					q.Half = fmt.Sprintf("%.2f", k.Lo+w*float64(i))
				}
			} else {
				rate[i] = math.NaN()
			}
		}
		if m := st.Stats.Metrics[filter.StatQuality]; m != nil {
			q.Mean, q.Std = m.Mean, m.Std()
		}
		q.Chart = NewHistChart("quality-"+st.Name, k.Lo, k.Hi, []string{"kept", dropName}, [][]int64{k.Counts, d.Counts}, rate, "share kept")
		if keep, err := filter.ParseKeep(r.Run.Keep); err == nil && r.Run.Keep != "" {
			// The policy's keep probability at each bin's centre score.
			exp := make([]float64, len(k.Counts))
			w := (k.Hi - k.Lo) / float64(len(k.Counts))
			for i := range exp {
				exp[i] = keepProbability(keep, k.Lo+w*(float64(i)+0.5))
			}
			q.Chart.SetExpected("keep probability of "+r.Run.Keep, exp)
			q.Policy = r.Run.Keep
		}
		r.Quality = append(r.Quality, q)
	}
	return ctx.Err()
}

// policyDropped bins the quality scores of the documents st's keep policy
// dropped (read from its dropped side output, at most maxExampleScan
// documents) into like's bins; ok is false when the side output is not
// there or was not read whole.
func policyDropped(ctx context.Context, st *Step, like *shards.Histogram) (h *shards.Histogram, n int64, ok bool) {
	if st.Dropped == nil || st.Dropped.Totals.Rows > maxExampleScan || len(like.Counts) == 0 {
		return nil, 0, false
	}
	h = &shards.Histogram{Lo: like.Lo, Hi: like.Hi, Counts: make([]int64, len(like.Counts))}
	set := newDocSet(st.Name, "dropped", filepath.Join(st.Dir, shards.DroppedDir), st.Dropped)
	const page = 1024
	w := (like.Hi - like.Lo) / float64(len(like.Counts))
	for lo := int64(0); lo < set.Rows(); lo += page {
		docs, err := set.Read(ctx, lo, lo+page)
		if err != nil {
			return nil, 0, false
		}
		for _, d := range docs {
			if d.Drop == nil || !d.HasQuality || d.Drop.Reason != reasonPareto && d.Drop.Reason != reasonThreshold {
				continue
			}
			i := int((d.Quality - like.Lo) / w)
			i = max(0, min(len(h.Counts)-1, i))
			h.Counts[i]++
			n++
		}
	}
	return h, n, true
}

// keepProbability is the chance that the keep policy keeps a document of
// score s: Pareto keeps iff u^(-1/alpha) - 1 > 1 - s for u uniform, that
// is with probability (2 - s)^(-alpha); a threshold keeps s >= X.
func keepProbability(k filter.Keep, s float64) float64 {
	switch k.Kind {
	case "pareto":
		return math.Pow(2-s, -k.Alpha)
	case "threshold":
		if s >= k.Threshold {
			return 1
		}
	}
	return 0
}

// buildLangs draws one chart of the kept documents' languages with one
// series per step that counted them (ingest, then what each filter kept):
// the languages are the first step's topLangs most frequent, the rest in
// one row.
func (r *Report) buildLangs() {
	var steps []*Step
	for _, st := range r.Run.Steps {
		if st.Stats != nil && len(st.Stats.Langs) > 0 {
			steps = append(steps, st)
		}
	}
	if len(steps) == 0 {
		return
	}
	// Order by the documents over all steps' counts, so a language the
	// first step barely has but a later one keeps still shows.
	all := map[string]int64{}
	for _, st := range steps {
		for k, v := range st.Stats.Langs {
			all[k] += v
		}
	}
	keys := shards.SortedKeys(all)
	sort.SliceStable(keys, func(i, j int) bool { return all[keys[i]] > all[keys[j]] })
	const topLangs = 10
	shown := keys[:min(topLangs, len(keys))]
	lt := &LangTable{}
	for _, k := range shards.SortedKeys(steps[0].Stats.Langs) {
		lt.Total += steps[0].Stats.Langs[k]
	}
	var labels []string
	vals := make([][]float64, 0, len(shown)+1)
	for _, k := range shown {
		label := k
		if k == "" {
			label = "(none)"
		}
		labels = append(labels, label)
		row := make([]float64, len(steps))
		for j, st := range steps {
			row[j] = float64(st.Stats.Langs[k])
		}
		vals = append(vals, row)
	}
	if len(keys) > len(shown) {
		labels = append(labels, fmt.Sprintf("%d others", len(keys)-len(shown)))
		row := make([]float64, len(steps))
		for j, st := range steps {
			for _, k := range keys[len(shown):] {
				row[j] += float64(st.Stats.Langs[k])
			}
		}
		vals = append(vals, row)
	}
	for _, st := range steps {
		lt.Steps = append(lt.Steps, st.Name)
	}
	lt.Chart = NewHBarChart("langs", lt.Steps, labels, vals, func(v float64) string {
		if v == 0 {
			return ""
		}
		return fmtNum(v)
	})
	r.Langs = lt
}

func (r *Report) buildDedup() {
	for _, st := range r.Run.Steps {
		var sec DedupSection
		if st.Stats != nil && st.Stage() == "dedup" {
			sec.HasStats, sec.In = true, st.Stats.In.Docs
			for k, c := range st.Stats.Dropped {
				if strings.HasPrefix(k, "dedup") {
					sec.Dups += c.Docs
				}
			}
		}
		if st.Stats != nil {
			if h := st.Stats.Histograms[histClusterSize]; h != nil {
				sec.SizeChart = NewHistChart("clusters-"+st.Name, h.Lo, h.Hi, []string{"clusters"}, [][]int64{h.Counts}, nil, "")
			}
			if h := st.Stats.Histograms[histSimilarity]; h != nil {
				sec.Similarity = NewHistChart("similarity-"+st.Name, h.Lo, h.Hi, []string{"near duplicates"}, [][]int64{h.Counts}, nil, "")
			}
		}
		if st.Clusters != nil {
			sec.Clusters = st
		}
		if sec.SizeChart != nil || sec.Clusters != nil || sec.HasStats {
			sec.Step = st.Name
			r.Dedup = append(r.Dedup, sec)
		}
	}
}

func (r *Report) buildTokens() {
	var labels []string
	var vals [][]float64
	for _, st := range r.Run.Steps {
		if st.Kind() != shards.KindTokens || st.Manifest == nil {
			continue
		}
		m := st.Manifest
		if st.TokensUnverified != "" {
			// A manifest its shards contradict is not shown as truth.
			r.TokenRows = append(r.TokenRows, TokenRow{Step: st.Name, Source: "manifest NOT VERIFIED: " + st.TokensUnverified})
			continue
		}
		if len(m.Sources) == 0 {
			r.TokenRows = append(r.TokenRows, TokenRow{Step: st.Name, Source: "(all)", Rows: m.Totals.Rows, Tokens: m.Totals.Tokens, DataBytes: m.Totals.DataBytes})
			labels = append(labels, st.Name)
			vals = append(vals, []float64{float64(m.Totals.Tokens)})
			continue
		}
		for _, k := range shards.SortedKeys(m.Sources) {
			s := m.Sources[k]
			r.TokenRows = append(r.TokenRows, TokenRow{Step: st.Name, Source: k, Rows: s.Rows, Tokens: s.Tokens, DataBytes: s.DataBytes})
			labels = append(labels, st.Name+": "+k)
			vals = append(vals, []float64{float64(s.Tokens)})
		}
	}
	if len(labels) > 0 {
		r.Tokens = NewHBarChart("tokens", []string{"tokens"}, labels, vals, func(v float64) string { return fmtNum(v) })
	}
}

func (r *Report) buildTraining() {
	for _, st := range r.Run.Steps {
		if len(st.TrainLog) == 0 {
			continue
		}
		n := len(st.TrainLog)
		xs, loss, val := make([]float64, n), make([]float64, n), make([]float64, n)
		t := TrainSection{Step: st.Name, Steps: st.TrainLog[n-1].Step, FirstLoss: st.TrainLog[0].Loss, LastLoss: st.TrainLog[n-1].Loss,
			LastVal: math.NaN(), BestVal: math.NaN()}
		var tps float64
		for i, rec := range st.TrainLog {
			xs[i], loss[i], val[i] = float64(rec.Step), rec.Loss, rec.ValLoss
			if !math.IsNaN(rec.ValLoss) {
				t.LastVal = rec.ValLoss
				if math.IsNaN(t.BestVal) || rec.ValLoss < t.BestVal {
					t.BestVal = rec.ValLoss
				}
			}
			tps += rec.TokensPerS
		}
		t.TokensPerS = tps / float64(n)
		names, xss, yss, dots := []string{"training loss", "validation loss"}, [][]float64{xs, xs}, [][]float64{loss, val}, []bool{false, true}
		// One line per eval set (log.csv's eval/NAME columns), as loss.png
		// draws them; bits per byte go in the table below the chart.
		evalNames := map[string]bool{}
		for _, rec := range st.TrainLog {
			for k := range rec.Evals {
				if name, ok := strings.CutPrefix(k, "eval/"); ok && !strings.HasSuffix(name, "/bpb") {
					evalNames[name] = true
				}
			}
		}
		for _, name := range shards.SortedKeys(evalNames) {
			ys := make([]float64, n)
			e := TrainEval{Name: name, Loss: math.NaN(), BitsPerByte: math.NaN()}
			for i, rec := range st.TrainLog {
				ys[i] = math.NaN()
				if v, ok := rec.Evals["eval/"+name]; ok && !math.IsNaN(v) {
					ys[i], e.Step, e.Loss = v, rec.Step, v
					if b, ok := rec.Evals["eval/"+name+"/bpb"]; ok {
						e.BitsPerByte = b
					}
				}
			}
			names, xss, yss, dots = append(names, "eval "+name), append(xss, xs), append(yss, ys), append(dots, true)
			t.Evals = append(t.Evals, e)
		}
		t.Chart = NewLineChart("loss-"+st.Name, names, xss, yss, dots)
		r.Training = append(r.Training, t)
	}
}

// Write renders the report as one self-contained HTML file: inline CSS and
// SVG, no script, no external resource.
func Write(ctx context.Context, w io.Writer, run *Run) error {
	rep, err := Build(ctx, run)
	if err != nil {
		return err
	}
	return rep.Render(w)
}

// Render writes the report's HTML.
func (r *Report) Render(w io.Writer) error {
	var b strings.Builder
	if err := reportTmpl.Execute(&b, r); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
