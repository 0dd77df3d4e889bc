package filter

import (
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"strings"
)

// Classifier drop reasons.
const (
	QualityPareto    = "quality/pareto"
	QualityThreshold = "quality/below_threshold"
)

// Keep is the classifier's keep policy.
type Keep struct {
	// Kind is "pareto" or "threshold".
	Kind string
	// Alpha is the Pareto shape (GPT-3 used 9).
	Alpha float64
	// Threshold keeps documents scoring at least this much.
	Threshold float64
	// Seed is mixed into the per-document draw.
	Seed uint64
}

// ParseKeep parses "pareto:ALPHA" or "threshold:X".
func ParseKeep(s string) (Keep, error) {
	kind, arg, ok := strings.Cut(s, ":")
	if !ok {
		return Keep{}, fmt.Errorf("keep policy %q: want pareto:ALPHA or threshold:X", s)
	}
	x, err := strconv.ParseFloat(arg, 64)
	if err != nil {
		return Keep{}, fmt.Errorf("keep policy %q: %w", s, err)
	}
	switch kind {
	case "pareto":
		if !(x > 0) || math.IsInf(x, 0) {
			return Keep{}, fmt.Errorf("keep policy %q: alpha must be positive", s)
		}
		return Keep{Kind: kind, Alpha: x}, nil
	case "threshold":
		if !(x >= 0 && x <= 1) {
			return Keep{}, fmt.Errorf("keep policy %q: threshold must be in [0, 1]", s)
		}
		return Keep{Kind: kind, Threshold: x}, nil
	}
	return Keep{}, fmt.Errorf("keep policy %q: unknown kind %q (pareto or threshold)", s, kind)
}

// Uniform returns a number in (0, 1) drawn from a hash of id and seed, so
// that a document's draw does not depend on order or workers.
func Uniform(id string, seed uint64) float64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	x := mix64(h.Sum64() ^ mix64(seed+0x632be59bd9b4e019))
	return (float64(x>>11) + 0.5) / (1 << 53)
}

// ParetoDraw returns a Lomax (Pareto II) draw with shape alpha, as numpy's
// random.pareto, from the uniform u: u^(-1/alpha) - 1.
func ParetoDraw(u, alpha float64) float64 { return math.Pow(u, -1/alpha) - 1 }

// Decide applies the policy to a document's score: it returns the empty
// reason to keep it. The Pareto policy keeps it iff a Pareto(alpha) draw
// seeded by the id exceeds 1 - score (Brown et al. 2020, appendix A).
func (k Keep) Decide(id string, score float64) (reason, value string) {
	switch k.Kind {
	case "pareto":
		if ParetoDraw(Uniform(id, k.Seed), k.Alpha) > 1-score {
			return "", ""
		}
		return QualityPareto, fmtRatio(score)
	case "threshold":
		if score >= k.Threshold {
			return "", ""
		}
		return QualityThreshold, fmtRatio(score)
	}
	return "", ""
}
