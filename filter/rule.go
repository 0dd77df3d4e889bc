package filter

import (
	"encoding/json"
	"strconv"

	"github.com/smelt-dev/smelt/shards"
)

// Rule is one heuristic filter. It implements only the check: Check returns
// the empty reason to keep the document, or one of Reasons() and the measured
// value that tripped it (formatted as text) to drop it. Check must not modify
// the document and must be safe for concurrent use.
type Rule interface {
	// Name identifies the rule ("gopher_quality", "c4", ...).
	Name() string
	// Reasons lists every reason Check can return, so that reports show
	// zeros and tests can catch an undeclared reason.
	Reasons() []string
	// Check decides one document.
	Check(d *shards.Document) (reason, value string)
}

// Modifier is a Rule that may also rewrite the text (C4 drops lines). Modify
// returns the new text and how many bytes it removed, or a drop reason and
// value exactly as Check would. A Pipeline calls Modify instead of Check.
type Modifier interface {
	Rule
	Modify(d *shards.Document) (text string, removed int, reason, value string)
}

// Annotator is a rule that, besides keeping, rewriting or dropping a
// document like a Modifier, has counts for the stage's statistics and a
// note to keep with the document (PII redaction: what kind was replaced
// where; decontamination: which eval record matched). A Pipeline calls
// Annotate instead of Check or Modify.
type Annotator interface {
	Rule
	Annotate(d *shards.Document) Annotation
}

// Annotation is an Annotator's decision on one document.
type Annotation struct {
	// Text is the new text when Changed (the reason is then empty).
	Text    string
	Changed bool
	// Removed is the number of input bytes the rule removed or replaced.
	Removed int
	// Reason and Value drop the document, as Check's results.
	Reason, Value string
	// Counts are added to the stage's metrics (one value per document),
	// kept or dropped.
	Counts map[string]int
	// Note, if not nil, is stored as JSON in the document's Meta under the
	// rule's name, kept or dropped.
	Note any
}

// Outcome describes what a Pipeline did to one document.
type Outcome struct {
	// Reason and Value are set when the document was dropped.
	Reason, Value string
	// Removed is the number of text bytes each modifying rule removed
	// (only rules that removed something appear).
	Removed map[string]int
	// Counts are the Annotators' counts.
	Counts map[string]int
}

// Pipeline applies rules in order, stopping at the first drop. It is the one
// place that routes documents: rules only check.
type Pipeline struct {
	Rules []Rule
}

// Reasons lists every reason the pipeline's rules can produce.
func (p *Pipeline) Reasons() []string {
	var rs []string
	for _, r := range p.Rules {
		rs = append(rs, r.Reasons()...)
	}
	return rs
}

// tokenChecker is implemented by rules that can reuse one tokenisation of
// the text: Pipeline tokenises once for all of them (until a Modifier
// rewrites the text), which saves about a fifth of the heuristics' time.
type tokenChecker interface {
	checkTokens(d *shards.Document, t *tokens) (reason, value string)
}

// Apply runs the rules over d, replacing d.Text when a Modifier rewrites it
// and setting d.Drop when a rule drops it.
func (p *Pipeline) Apply(d *shards.Document) Outcome {
	var o Outcome
	var tk *tokens
	fresh := false
	defer func() {
		if tk != nil {
			tokensPool.Put(tk)
		}
	}()
	for _, r := range p.Rules {
		var reason, value string
		if tc, ok := r.(tokenChecker); ok {
			if tk == nil {
				tk = tokensPool.Get().(*tokens)
			}
			if !fresh {
				tk.tokenize(d.Text)
				fresh = true
			}
			reason, value = tc.checkTokens(d, tk)
		} else if an, ok := r.(Annotator); ok {
			a := an.Annotate(d)
			reason, value = a.Reason, a.Value
			for k, v := range a.Counts {
				if o.Counts == nil {
					o.Counts = map[string]int{}
				}
				o.Counts[k] += v
			}
			if a.Note != nil {
				d.Meta = setMetaKey(d.Meta, r.Name(), a.Note)
			}
			if reason == "" && a.Changed {
				if o.Removed == nil {
					o.Removed = map[string]int{}
				}
				o.Removed[r.Name()] += a.Removed
				d.Text = a.Text
				fresh = false
			}
		} else if m, ok := r.(Modifier); ok {
			var text string
			var removed int
			text, removed, reason, value = m.Modify(d)
			if reason == "" && removed > 0 {
				if o.Removed == nil {
					o.Removed = map[string]int{}
				}
				o.Removed[r.Name()] += removed
				d.Text = text
				fresh = false
			}
		} else {
			reason, value = r.Check(d)
		}
		if reason != "" {
			d.Drop = &shards.Drop{Reason: reason, Value: value}
			o.Reason, o.Value = reason, value
			return o
		}
	}
	return o
}

// fmtRatio formats a measured ratio for Drop.Value.
func fmtRatio(x float64) string { return strconv.FormatFloat(x, 'f', 4, 64) }

// fmtInt formats a measured count for Drop.Value.
func fmtInt(n int) string { return strconv.Itoa(n) }

// setMetaKey returns the JSON object meta with key set to v. Meta that is
// not a JSON object is returned unchanged rather than overwritten.
func setMetaKey(meta, key string, v any) string {
	m := map[string]json.RawMessage{}
	if meta != "" {
		if err := json.Unmarshal([]byte(meta), &m); err != nil {
			return meta
		}
	}
	data, err := json.Marshal(v)
	if err != nil {
		return meta
	}
	m[key] = data
	out, err := json.Marshal(m)
	if err != nil {
		return meta
	}
	return string(out)
}
