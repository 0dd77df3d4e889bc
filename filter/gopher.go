package filter

import (
	"hash/maphash"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/smelt-dev/smelt/shards"
)

// Gopher quality reasons (Rae et al. 2021, "Scaling Language Models:
// Methods, Analysis & Insights from Training Gopher", appendix A.1.1).
const (
	GopherTooFewWords         = "gopher/too_few_words"
	GopherTooManyWords        = "gopher/too_many_words"
	GopherShortMeanWord       = "gopher/short_mean_word"
	GopherLongMeanWord        = "gopher/long_mean_word"
	GopherTooManyHashes       = "gopher/too_many_hashes"
	GopherTooManyEllipses     = "gopher/too_many_ellipses"
	GopherTooManyBulletLines  = "gopher/too_many_bullet_lines"
	GopherTooManyEllipsisEnds = "gopher/too_many_ellipsis_lines"
	GopherTooFewAlphaWords    = "gopher/too_few_alpha_words"
	GopherTooFewStopWords     = "gopher/too_few_stop_words"
)

// GopherQuality is the Gopher (MassiveText) quality filter. Each threshold
// defaults to the published value; a negative value disables its check.
type GopherQuality struct {
	// MinWords and MaxWords bound the number of non-symbol words (50, 100000).
	MinWords int `yaml:"min_words"`
	MaxWords int `yaml:"max_words"`
	// MinMeanWordLen and MaxMeanWordLen bound the mean length in characters
	// of non-symbol words (3, 10).
	MinMeanWordLen float64 `yaml:"min_mean_word_len"`
	MaxMeanWordLen float64 `yaml:"max_mean_word_len"`
	// MaxHashRatio bounds "#" per word and MaxEllipsisRatio "..." or "…"
	// per word (0.1 each).
	MaxHashRatio     float64 `yaml:"max_hash_ratio"`
	MaxEllipsisRatio float64 `yaml:"max_ellipsis_ratio"`
	// MaxBulletLines bounds the fraction of lines starting with a bullet
	// ("•" or "-" after leading space; 0.9).
	MaxBulletLines float64 `yaml:"max_bullet_lines"`
	// MaxEllipsisLines bounds the fraction of lines ending in "..." or "…"
	// (0.3).
	MaxEllipsisLines float64 `yaml:"max_ellipsis_lines"`
	// MinAlphaWords is the least fraction of words holding a letter (0.8).
	MinAlphaWords float64 `yaml:"min_alpha_words"`
	// MinStopWords is the least number of stop-word occurrences (2).
	MinStopWords int `yaml:"min_stop_words"`
	// StopWords are matched case-insensitively; nil means Gopher's English
	// list: the, be, to, of, and, that, have, with.
	StopWords []string `yaml:"stop_words"`
}

// DefaultGopherQuality returns the filter with the published thresholds.
func DefaultGopherQuality() *GopherQuality {
	return &GopherQuality{
		MinWords: 50, MaxWords: 100_000,
		MinMeanWordLen: 3, MaxMeanWordLen: 10,
		MaxHashRatio: 0.1, MaxEllipsisRatio: 0.1,
		MaxBulletLines: 0.9, MaxEllipsisLines: 0.3,
		MinAlphaWords: 0.8, MinStopWords: 2,
	}
}

var gopherStopWords = []string{"the", "be", "to", "of", "and", "that", "have", "with"}

// Name implements Rule.
func (g *GopherQuality) Name() string { return "gopher_quality" }

// Reasons implements Rule.
func (g *GopherQuality) Reasons() []string {
	return []string{GopherTooFewWords, GopherTooManyWords, GopherShortMeanWord, GopherLongMeanWord,
		GopherTooManyHashes, GopherTooManyEllipses, GopherTooManyBulletLines, GopherTooManyEllipsisEnds,
		GopherTooFewAlphaWords, GopherTooFewStopWords}
}

var tokensPool = sync.Pool{New: func() any { return new(tokens) }}

// Check implements Rule.
func (g *GopherQuality) Check(d *shards.Document) (string, string) {
	t := tokensPool.Get().(*tokens)
	defer tokensPool.Put(t)
	t.tokenize(d.Text)
	return g.checkTokens(d, t)
}

// checkTokens is Check with d.Text already tokenised into t.
func (g *GopherQuality) checkTokens(d *shards.Document, t *tokens) (string, string) {
	text := d.Text
	n := len(t.Words)
	if g.MinWords >= 0 && n < g.MinWords {
		return GopherTooFewWords, fmtInt(n)
	}
	if g.MaxWords >= 0 && n > g.MaxWords {
		return GopherTooManyWords, fmtInt(n)
	}
	if n > 0 {
		chars := 0
		for _, w := range t.Words {
			chars += utf8.RuneCountInString(w)
		}
		mean := float64(chars) / float64(n)
		if g.MinMeanWordLen >= 0 && mean < g.MinMeanWordLen {
			return GopherShortMeanWord, fmtRatio(mean)
		}
		if g.MaxMeanWordLen >= 0 && mean > g.MaxMeanWordLen {
			return GopherLongMeanWord, fmtRatio(mean)
		}
	}
	if t.Total > 0 {
		total := float64(t.Total)
		if g.MaxHashRatio >= 0 {
			if r := float64(strings.Count(text, "#")) / total; r > g.MaxHashRatio {
				return GopherTooManyHashes, fmtRatio(r)
			}
		}
		if g.MaxEllipsisRatio >= 0 {
			if r := float64(strings.Count(text, "...")+strings.Count(text, "…")) / total; r > g.MaxEllipsisRatio {
				return GopherTooManyEllipses, fmtRatio(r)
			}
		}
	}
	if g.MaxBulletLines >= 0 || g.MaxEllipsisLines >= 0 {
		lines, bullets, ellipses := 0, 0, 0
		forLines(text, func(line string) {
			lines++
			l := strings.TrimLeft(line, " \t\v\f\u00a0")
			if strings.HasPrefix(l, "•") || strings.HasPrefix(l, "-") {
				bullets++
			}
			r := strings.TrimRight(line, " \t\v\f\r\u00a0")
			if strings.HasSuffix(r, "...") || strings.HasSuffix(r, "…") {
				ellipses++
			}
		})
		if lines > 0 {
			if r := float64(bullets) / float64(lines); g.MaxBulletLines >= 0 && r > g.MaxBulletLines {
				return GopherTooManyBulletLines, fmtRatio(r)
			}
			if r := float64(ellipses) / float64(lines); g.MaxEllipsisLines >= 0 && r > g.MaxEllipsisLines {
				return GopherTooManyEllipsisEnds, fmtRatio(r)
			}
		}
	}
	if g.MinAlphaWords >= 0 && t.Total > 0 {
		if r := float64(t.Alpha) / float64(t.Total); r < g.MinAlphaWords {
			return GopherTooFewAlphaWords, fmtRatio(r)
		}
	}
	if g.MinStopWords > 0 {
		stop := g.StopWords
		if len(stop) == 0 {
			stop = gopherStopWords
		}
		defaultList := len(g.StopWords) == 0
		found := 0
		for _, w := range t.Words {
			if defaultList && (len(w) < 2 || len(w) > 4) {
				continue // Gopher's list holds only 2..4-letter words
			}
			for _, s := range stop {
				if strings.EqualFold(w, s) {
					found++
					break
				}
			}
			if found >= g.MinStopWords {
				break
			}
		}
		if found < g.MinStopWords {
			return GopherTooFewStopWords, fmtInt(found)
		}
	}
	return "", ""
}

// forLines calls f for every line of text, split like Python's
// str.splitlines on "\n", "\r\n" and "\r" (no trailing empty line).
func forLines(text string, f func(string)) {
	for len(text) > 0 {
		i := strings.IndexAny(text, "\r\n")
		if i < 0 {
			f(text)
			return
		}
		f(text[:i])
		if text[i] == '\r' && i+1 < len(text) && text[i+1] == '\n' {
			i++
		}
		text = text[i+1:]
	}
}

// Gopher repetition reasons (Rae et al. 2021, table A1).
const (
	RepDupLineFrac     = "gopher_rep/dup_line_frac"
	RepDupParaFrac     = "gopher_rep/dup_para_frac"
	RepDupLineCharFrac = "gopher_rep/dup_line_char_frac"
	RepDupParaCharFrac = "gopher_rep/dup_para_char_frac"
)

// RepTopNGram is the reason for a too-frequent n-gram (n = 2, 3, 4).
func RepTopNGram(n int) string { return "gopher_rep/top_" + fmtInt(n) + "_gram" }

// RepDupNGram is the reason for too many characters in duplicated n-grams
// (n = 5..10).
func RepDupNGram(n int) string { return "gopher_rep/dup_" + fmtInt(n) + "_gram" }

// GopherRepetition is the Gopher repetition filter. Fractions are of the
// document's length in bytes (datatrove counts Python characters; the two
// agree on ASCII text). A negative threshold disables its check.
type GopherRepetition struct {
	// DupLineFrac and DupParaFrac bound the fraction of lines (split on
	// runs of "\n") and paragraphs (split on "\n\n"+) that repeat an
	// earlier one (0.3, 0.3).
	DupLineFrac float64 `yaml:"dup_line_frac"`
	DupParaFrac float64 `yaml:"dup_para_frac"`
	// DupLineCharFrac and DupParaCharFrac bound the characters in those
	// repeated lines and paragraphs (0.2, 0.2).
	DupLineCharFrac float64 `yaml:"dup_line_char_frac"`
	DupParaCharFrac float64 `yaml:"dup_para_char_frac"`
	// TopNGrams maps n to the most the most frequent n-gram may cover
	// (2: 0.20, 3: 0.18, 4: 0.16). Its characters are those of the words
	// joined by single spaces, times its count.
	TopNGrams map[int]float64 `yaml:"top_n_grams"`
	// DupNGrams maps n to the most that repeated n-grams may cover
	// (5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10). Counted as
	// in datatrove: a scan that, on an n-gram seen before, adds its word
	// characters and jumps past it, so overlapping repeats count once.
	DupNGrams map[int]float64 `yaml:"dup_n_grams"`
}

// DefaultGopherRepetition returns the filter with the published thresholds.
func DefaultGopherRepetition() *GopherRepetition {
	return &GopherRepetition{
		DupLineFrac: 0.3, DupParaFrac: 0.3, DupLineCharFrac: 0.2, DupParaCharFrac: 0.2,
		TopNGrams: map[int]float64{2: 0.20, 3: 0.18, 4: 0.16},
		DupNGrams: map[int]float64{5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10},
	}
}

// Name implements Rule.
func (g *GopherRepetition) Name() string { return "gopher_repetition" }

// Reasons implements Rule.
func (g *GopherRepetition) Reasons() []string {
	rs := []string{RepDupParaFrac, RepDupParaCharFrac, RepDupLineFrac, RepDupLineCharFrac}
	for _, n := range sortedKeys(g.TopNGrams) {
		rs = append(rs, RepTopNGram(n))
	}
	for _, n := range sortedKeys(g.DupNGrams) {
		rs = append(rs, RepDupNGram(n))
	}
	return rs
}

type repScratch struct {
	tok  tokens
	tab  countTable
	pre  []uint64 // pre[k]: polynomial hash of words[:k]
	plen []int    // plen[k]: bytes in words[:k]
}

var repPool = sync.Pool{New: func() any { return new(repScratch) }}

// dupElements counts the elements that repeat an earlier one and their
// bytes. Elements are compared by a 64-bit hash; a collision between two
// different lines of one document (odds about n^2/2^64) would count one
// spurious duplicate.
func (s *repScratch) dupElements(parts []string) (dups, chars int) {
	s.tab.reset(len(parts))
	for _, p := range parts {
		if s.tab.inc(maphash.String(lineSeed, p)) > 1 {
			dups++
			chars += len(p)
		}
	}
	return dups, chars
}

var lineSeed = maphash.MakeSeed()

// mix64 is the splitmix64 finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// polyBase is the multiplier of the n-gram rolling hash; polyPow[n] is
// polyBase^n.
const polyBase uint64 = 0x9e3779b97f4a7c15

var polyPow = func() (p [64]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * polyBase
	}
	return p
}()

// prepare hashes the words (FNV-1a, then mixed) into prefix sums so that an
// n-gram's hash and length are O(1).
func (s *repScratch) prepare(words []string) {
	s.pre = append(s.pre[:0], 0)
	s.plen = append(s.plen[:0], 0)
	var h uint64
	l := 0
	for _, w := range words {
		x := uint64(fnvOffset)
		for i := 0; i < len(w); i++ {
			x = (x ^ uint64(w[i])) * fnvPrime
		}
		h = h*polyBase + mix64(x)
		l += len(w)
		s.pre = append(s.pre, h)
		s.plen = append(s.plen, l)
	}
}

// polyPower returns polyBase^n; the hash of words[i:i+n] is
// pre[i+n] - pre[i]*polyPower(n).
func polyPower(n int) uint64 {
	if n < len(polyPow) {
		return polyPow[n]
	}
	p := uint64(1)
	for k := 0; k < n; k++ {
		p *= polyBase
	}
	return p
}

// Check implements Rule.
func (g *GopherRepetition) Check(d *shards.Document) (string, string) {
	return g.checkTokens(d, nil)
}

// checkTokens is Check with d.Text already tokenised into t, or t nil to
// tokenise only when the line and paragraph checks pass.
func (g *GopherRepetition) checkTokens(d *shards.Document, t *tokens) (string, string) {
	text := d.Text
	if len(strings.TrimSpace(text)) == 0 {
		return "", "" // nothing repeats in an empty document
	}
	s := repPool.Get().(*repScratch)
	defer repPool.Put(s)
	total := float64(len(text))

	paras := splitParagraphs(strings.TrimSpace(text))
	dups, chars := s.dupElements(paras)
	if r := float64(dups) / float64(len(paras)); g.DupParaFrac >= 0 && r > g.DupParaFrac {
		return RepDupParaFrac, fmtRatio(r)
	}
	if r := float64(chars) / total; g.DupParaCharFrac >= 0 && r > g.DupParaCharFrac {
		return RepDupParaCharFrac, fmtRatio(r)
	}
	lines := splitNewlineRuns(text)
	dups, chars = s.dupElements(lines)
	if r := float64(dups) / float64(len(lines)); g.DupLineFrac >= 0 && r > g.DupLineFrac {
		return RepDupLineFrac, fmtRatio(r)
	}
	if r := float64(chars) / total; g.DupLineCharFrac >= 0 && r > g.DupLineCharFrac {
		return RepDupLineCharFrac, fmtRatio(r)
	}

	if t == nil {
		s.tok.tokenize(text)
		t = &s.tok
	}
	words := t.Words
	s.prepare(words)
	for _, n := range sortedKeys(g.TopNGrams) {
		limit := g.TopNGrams[n]
		if limit < 0 || n < 1 || len(words) < n {
			continue
		}
		s.tab.reset(len(words) - n + 1)
		bestCount, bestLen := uint32(0), 0
		pw := polyPower(n)
		pre, plen := s.pre, s.plen
		for i := 0; i+n <= len(words); i++ {
			if c := s.tab.inc(pre[i+n] - pre[i]*pw); c >= bestCount {
				l := plen[i+n] - plen[i] + n - 1 // the words joined by single spaces
				if c > bestCount || l > bestLen {
					bestCount, bestLen = c, l
				}
			}
		}
		if r := float64(bestCount) * float64(bestLen) / total; r > limit {
			return RepTopNGram(n), fmtRatio(r)
		}
	}
	for _, n := range sortedKeys(g.DupNGrams) {
		limit := g.DupNGrams[n]
		if limit < 0 || n < 1 || len(words) < n {
			continue
		}
		s.tab.reset(len(words) - n + 1)
		repeated := 0
		pw := polyPower(n)
		pre, plen := s.pre, s.plen
		for i := 0; i+n <= len(words); {
			if s.tab.inc(pre[i+n]-pre[i]*pw) > 1 {
				// Seen before. (The count went up, which the scan never
				// reads again: only presence matters here.)
				repeated += plen[i+n] - plen[i]
				i += n
			} else {
				i++
			}
		}
		if r := float64(repeated) / total; r > limit {
			return RepDupNGram(n), fmtRatio(r)
		}
	}
	return "", ""
}

// splitParagraphs splits text at runs of two or more "\n".
func splitParagraphs(text string) []string {
	var out []string
	start := 0
	for i := 0; i < len(text); {
		if text[i] == '\n' && i+1 < len(text) && text[i+1] == '\n' {
			out = append(out, text[start:i])
			for i < len(text) && text[i] == '\n' {
				i++
			}
			start = i
			continue
		}
		i++
	}
	return append(out, text[start:])
}

// splitNewlineRuns splits text at runs of one or more "\n" (like Python's
// re.split("\n+")): a leading or trailing newline yields an empty part.
func splitNewlineRuns(text string) []string {
	var out []string
	start := 0
	for i := 0; i < len(text); {
		if text[i] == '\n' {
			out = append(out, text[start:i])
			for i < len(text) && text[i] == '\n' {
				i++
			}
			start = i
			continue
		}
		i++
	}
	return append(out, text[start:])
}

func sortedKeys(m map[int]float64) []int {
	ks := make([]int, 0, len(m))
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
