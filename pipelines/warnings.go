package pipelines

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/smelt-dev/smelt/filter"
)

// Warnings lists the settings of r that silently do less than they seem
// to, for the start of a run: a mixed source without a filter (it is not
// filtered at all), a url rule without a block list (it drops nothing), and
// a dedup whose scope is left to the recipe default, source, which differs
// from smelt dedup's default, global. Each names the recipe line and how to
// silence it.
func (r *Recipe) Warnings() []string {
	var out []string
	at := func(p pos, format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		if line := lineOf(r.node, p); line > 0 {
			msg = fmt.Sprintf("line %d: %s", line, msg)
		}
		if r.file != "" {
			msg = r.file + ": " + msg
		}
		out = append(out, msg)
	}
	for i, s := range r.Sources {
		if s == nil || s.Reference {
			continue
		}
		if s.Filter == nil {
			at(pos{"sources", i}, "source %s has no filter: key, so none of its documents is filtered (filter: {} runs the default rules %v)", s.Name, filter.DefaultRules)
			continue
		}
		if slices.Contains(s.Filter.Rules, filter.RuleURL) && (s.Filter.URL == nil || len(s.Filter.URL.Domains)+len(s.Filter.URL.Substrings) == 0) {
			at(pos{"sources", i, "filter", "rules"}, "source %s: the url rule has no block list (url: {domains: [...], substrings: [...]}), so it drops nothing", s.Name)
		}
	}
	if r.Dedup != nil && r.node != nil {
		if dn := mapValue(r.node, "dedup"); mapValue(dn, "scope") == nil {
			at(pos{"dedup"}, "dedup scope not set: the recipe deduplicates within each source (scope: source), while smelt dedup's --scope defaults to global; set scope: source or scope: global to say which")
		}
	}
	return out
}

// logWarnings prints r's Warnings at warn level.
func logWarnings(r *Recipe) {
	for _, w := range r.Warnings() {
		slog.Warn(w)
	}
}
