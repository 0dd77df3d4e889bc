package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/smelt-dev/smelt/shards"
)

// Headline is the report's first screen: what went in, what came out, and
// why the rest was dropped.
type Headline struct {
	// Raw is what the first steps read (ingest's records and input bytes,
	// or the first step's input), over the sources that are mixed.
	Raw shards.Count
	// Docs is what the first steps made into documents.
	Docs shards.Count
	// Final is what the last document step kept (the text that is
	// tokenized, or the directory's own output).
	Final shards.Count
	// FinalStep names the steps Final comes from.
	FinalStep string
	// Tokens is the token shards' total (0 when nothing was tokenized).
	Tokens int64
	// Yield is Final.Docs / Docs.Docs, as text ("" when unknown).
	Yield string
	// DupRate is the share of dedup's input dropped as duplicates ("" when
	// no dedup step ran).
	DupRate string
	DupDocs int64
	DupIn   int64
	// TopDrops are the five reasons that dropped the most documents.
	TopDrops []DropRow
	// Sources are tokens and passes per source in the mix.
	Sources []HeadSource
	// Exports are the exports the run wrote.
	Exports []ExportRow
}

// HeadSource is one source's tokens and passes in the mix.
type HeadSource struct {
	Name   string
	Docs   int64
	Tokens int64
	// Weight and Epochs come from the epochs table (Epochs < 0: not known).
	Weight, Epochs float64
}

// ExportRow is one export directory of a run.
type ExportRow struct {
	Step, Path, Format string
	Files              []string
	Docs, Tokens       int64
	Bytes              int64
}

// exportSidecar is the part of export.json the report shows.
type exportSidecar struct {
	Format string `json:"format"`
	Files  []struct {
		Name  string `json:"name"`
		Role  string `json:"role"`
		Bytes int64  `json:"bytes"`
	} `json:"files"`
	Docs   int64 `json:"docs"`
	Tokens int64 `json:"tokens"`
}

// mixedSource reports whether a source enters the mix (every source when
// the recipe is not known).
func (run *Run) mixedSource(name string) bool {
	if run.Recipe == nil {
		return true
	}
	for _, s := range run.Recipe.Sources {
		if s.Name == name {
			return !s.Reference
		}
	}
	return true
}

func (r *Report) buildHeadline() {
	h := &Headline{}
	run := r.Run
	var docSteps []*Step
	for _, st := range run.Steps {
		if st.Kind() == shards.KindDocuments && st.Stats != nil {
			docSteps = append(docSteps, st)
		}
	}
	// Raw: the ingest steps of mixed sources, or the first document step.
	var ingest []*Step
	for _, st := range docSteps {
		if st.Stage() == "ingest" && (!strings.HasPrefix(st.Name, "ingest-") || run.mixedSource(strings.TrimPrefix(st.Name, "ingest-"))) {
			ingest = append(ingest, st)
		}
	}
	if len(ingest) == 0 && len(docSteps) > 0 {
		ingest = docSteps[:1]
	}
	for _, st := range ingest {
		h.Raw.Merge(st.Stats.In)
		h.Docs.Merge(st.Stats.Out)
	}
	// Final: the last dedup step, else the last document steps per source
	// (filter-SOURCE after ingest-SOURCE).
	last := map[string]*Step{}
	var order []string
	for _, st := range docSteps {
		key := st.Stage()
		if i := strings.IndexByte(st.Name, '-'); i > 0 && st.Stage() != "dedup" {
			key = st.Name[i+1:]
		}
		if run.IsRun && !run.mixedSource(key) && st.Stage() != "dedup" {
			continue
		}
		if st.Stage() == "dedup" {
			last, order = map[string]*Step{}, nil
			key = "dedup"
		}
		if _, ok := last[key]; !ok {
			order = append(order, key)
		}
		last[key] = st
	}
	var names []string
	for _, k := range order {
		h.Final.Merge(last[k].Stats.Out)
		names = append(names, last[k].Name)
	}
	h.FinalStep = strings.Join(names, ", ")
	if h.Docs.Docs > 0 && len(names) > 0 {
		h.Yield = funcs["pct"].(func(a, b int64) string)(h.Final.Docs, h.Docs.Docs)
	}
	// Duplicates: dedup:* drops over dedup's input.
	for _, st := range docSteps {
		if st.Stage() != "dedup" {
			continue
		}
		h.DupIn += st.Stats.In.Docs
		for k, c := range st.Stats.Dropped {
			if strings.HasPrefix(k, "dedup") {
				h.DupDocs += c.Docs
			}
		}
		if h.DupRate == "" {
			h.DupRate = "0.0%"
		}
	}
	if h.DupIn > 0 {
		h.DupRate = funcs["pct"].(func(a, b int64) string)(h.DupDocs, h.DupIn)
	}
	// Top five drop reasons over all steps (dedup's included).
	top := append([]DropRow(nil), r.Drops...)
	sort.SliceStable(top, func(i, j int) bool { return top[i].Count.Docs > top[j].Count.Docs })
	h.TopDrops = top[:min(5, len(top))]
	// Tokens per source, with the passes the mix makes over each.
	epochs := map[string]shards.PlanRow{}
	if run.Plan != nil {
		for _, p := range run.Plan.Rows {
			epochs[p.Name] = p
		}
	}
	for _, t := range r.TokenRows {
		h.Tokens += t.Tokens
		hs := HeadSource{Name: t.Source, Docs: t.Rows, Tokens: t.Tokens, Epochs: -1}
		if p, ok := epochs[t.Source]; ok {
			hs.Weight, hs.Epochs = p.Weight, p.Epochs
		}
		h.Sources = append(h.Sources, hs)
	}
	// Exports: RUN_DIR/export-*/export.json.
	if run.IsRun {
		dirs, _ := filepath.Glob(filepath.Join(run.Path, "export-*", "export.json"))
		sort.Strings(dirs)
		for _, p := range dirs {
			data, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			var s exportSidecar
			if json.Unmarshal(data, &s) != nil {
				continue
			}
			dir := filepath.Dir(p)
			e := ExportRow{Step: filepath.Base(dir), Path: dir, Format: s.Format, Docs: s.Docs, Tokens: s.Tokens}
			for _, f := range s.Files {
				e.Files = append(e.Files, f.Name)
				e.Bytes += f.Bytes
			}
			h.Exports = append(h.Exports, e)
		}
	}
	if h.Docs.Docs == 0 && h.Tokens == 0 && len(h.TopDrops) == 0 {
		return
	}
	r.Headline = h
}
