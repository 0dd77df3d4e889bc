package report

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/smelt-dev/smelt/filter"
	"github.com/smelt-dev/smelt/shards"
)

// DecontamSection is one step's decontamination and PII results: what a
// paper reports (matches per eval set, the contaminated eval records) and
// the PII replaced per kind.
type DecontamSection struct {
	Step string
	Sets []DecontamSetRow
	// Records are the contaminated eval records, most matched first (at
	// most maxRecordRows; RecordsTotal counts them all).
	Records      []DecontamRecordRow
	RecordsTotal int
	PII          []PIIRow
}

// DecontamSetRow is one eval set: documents that matched it and matched
// n-gram positions.
type DecontamSetRow struct {
	Set     string
	Docs    int64
	NGrams  int64
	Records int
}

// DecontamRecordRow is one contaminated eval record and the documents
// holding it.
type DecontamRecordRow struct {
	Set, Record string
	Docs        int64
}

// PIIRow is one PII kind: documents with it and replacements.
type PIIRow struct {
	Kind        string
	Docs, Spans int64
}

const maxRecordRows = 200

// isDecontamMetric reports the metrics the decontam section shows instead
// of the metrics table (one per contaminated record would swamp it).
func isDecontamMetric(name string) bool {
	return strings.HasPrefix(name, filter.StatDecontamRecord)
}

func (r *Report) buildDecontam() {
	for _, st := range r.Run.Steps {
		if st.Stats == nil {
			continue
		}
		sec := DecontamSection{Step: st.Name}
		perSet := map[string]int{}
		for _, k := range shards.SortedKeys(st.Stats.Metrics) {
			m := st.Stats.Metrics[k]
			switch {
			case strings.HasPrefix(k, filter.StatDecontamNGrams):
				sec.Sets = append(sec.Sets, DecontamSetRow{Set: strings.TrimPrefix(k, filter.StatDecontamNGrams), Docs: m.N, NGrams: int64(m.Sum)})
			case strings.HasPrefix(k, filter.StatDecontamRecord):
				key := strings.TrimPrefix(k, filter.StatDecontamRecord)
				set, rec, _ := strings.Cut(key, "#")
				perSet[set]++
				sec.Records = append(sec.Records, DecontamRecordRow{Set: set, Record: rec, Docs: m.N})
			case strings.HasPrefix(k, filter.StatPII):
				sec.PII = append(sec.PII, PIIRow{Kind: strings.TrimPrefix(k, filter.StatPII), Docs: m.N, Spans: int64(m.Sum)})
			}
		}
		if len(sec.Sets) == 0 && len(sec.PII) == 0 {
			continue
		}
		for i := range sec.Sets {
			sec.Sets[i].Records = perSet[sec.Sets[i].Set]
		}
		sort.SliceStable(sec.Records, func(i, j int) bool { return sec.Records[i].Docs > sec.Records[j].Docs })
		sec.RecordsTotal = len(sec.Records)
		if len(sec.Records) > maxRecordRows {
			sec.Records = sec.Records[:maxRecordRows]
		}
		r.Decontam = append(r.Decontam, sec)
	}
}

// Annotated is a document's text cut into segments for display, with the
// spans the decontam and pii rules noted in its meta marked.
type Annotated struct {
	Segments []Segment
	// Matches are the eval records a decontam rule found (with their text
	// in the input), Cuts the number of places it cut text out.
	Matches []filter.DecontamMatch
	Cuts    int
	// Kinds counts the PII placeholders by kind.
	Kinds map[string]int
}

// Segment is a piece of text; Mark, if set, names what it is ("pii:email",
// "decontam: SET#RECORD", "cut").
type Segment struct {
	Text, Mark, Class string
}

// Annotated returns the document's annotations, or nil when its meta has
// none (or they do not fit the text).
func (d *Doc) Annotated() *Annotated {
	if d.Meta == "" || !strings.Contains(d.Meta, `"decontam"`) && !strings.Contains(d.Meta, `"pii"`) {
		return nil
	}
	var m struct {
		Decontam *filter.DecontamNote `json:"decontam"`
		PII      *filter.PIINote      `json:"pii"`
	}
	if json.Unmarshal([]byte(d.Meta), &m) != nil || m.Decontam == nil && m.PII == nil {
		return nil
	}
	type mark struct {
		start, end int
		label, cls string
	}
	var marks []mark
	a := &Annotated{}
	text := d.Text
	if dc := m.Decontam; dc != nil {
		a.Matches = dc.Matches
		if len(dc.Cuts) == 0 {
			// The text is the input: mark the matched passages.
			for _, x := range dc.Matches {
				marks = append(marks, mark{x.Start, x.End, "eval " + x.Set + "#" + x.Record, "match"})
			}
		}
		for _, c := range dc.Cuts {
			if c == 0 || c == len(text) || c >= 2 && c <= len(text) && text[c-2:c] == "\n\n" {
				marks = append(marks, mark{c, c, "removed benchmark text", "cut"})
			}
		}
		a.Cuts = len(dc.Cuts)
	}
	if p := m.PII; p != nil {
		a.Kinds = map[string]int{}
		for _, s := range p.Spans {
			a.Kinds[s.Kind]++
			if ph, ok := p.Placeholders[s.Kind]; ok && s.Start >= 0 && s.End <= len(text) && s.Start <= s.End && text[s.Start:s.End] == ph {
				marks = append(marks, mark{s.Start, s.End, "pii: " + s.Kind, "pii"})
			}
		}
	}
	sort.SliceStable(marks, func(i, j int) bool { return marks[i].start < marks[j].start })
	pos := 0
	for _, mk := range marks {
		if mk.start < pos || mk.end > len(text) || mk.start > mk.end {
			continue // overlapping or stale (a later rule rewrote the text)
		}
		if mk.start > pos {
			a.Segments = append(a.Segments, Segment{Text: text[pos:mk.start]})
		}
		seg := Segment{Text: text[mk.start:mk.end], Mark: mk.label, Class: mk.cls}
		if mk.cls == "cut" {
			seg.Text = "[…]"
		}
		a.Segments = append(a.Segments, seg)
		pos = mk.end
	}
	a.Segments = append(a.Segments, Segment{Text: text[pos:]})
	return a
}
