package filter

import (
	"hash/maphash"
	"strings"
	"unicode/utf8"

	"github.com/smelt-dev/smelt/shards"
)

// FineWeb reasons (Penedo et al. 2024, "The FineWeb Datasets", section 3.4;
// defaults as in datatrove's FineWebQualityFilter).
const (
	FineWebEmpty         = "fineweb/empty"
	FineWebLinePunct     = "fineweb/line_punct_ratio"
	FineWebShortLines    = "fineweb/short_line_ratio"
	FineWebCharDupRatio  = "fineweb/char_dup_ratio"
	FineWebNewlineRatio  = "fineweb/newline_ratio"
	fineWebRuleName      = RuleFineWeb
	defaultFineWebStops  = ".'\"!?"
	defaultShortLineChar = 30
)

// FineWebQuality is FineWeb's own quality filter. Lines are split on "\n"
// and blank lines ignored. A negative threshold disables its check.
type FineWebQuality struct {
	// MinLinePunct is the least fraction of lines ending in one of
	// StopChars (0.12). ExcludeZero keeps documents where no line does.
	MinLinePunct float64 `yaml:"min_line_punct"`
	ExcludeZero  bool    `yaml:"exclude_zero"`
	// StopChars are the terminal characters; "" means ". ' \" ! ?" as in
	// the FineWeb release (datatrove later widened it to all Unicode
	// terminal punctuation; pass that set here to match).
	StopChars string `yaml:"stop_chars"`
	// MaxShortLines bounds the fraction of lines of at most ShortLineLen
	// characters (0.67, 30).
	MaxShortLines float64 `yaml:"max_short_lines"`
	ShortLineLen  int     `yaml:"short_line_len"`
	// MaxCharDupRatio bounds the bytes in lines repeating an earlier line
	// over the bytes of the text without newlines (0.01).
	MaxCharDupRatio float64 `yaml:"max_char_dup_ratio"`
	// MaxNewlineRatio bounds newlines per word (0.3).
	MaxNewlineRatio float64 `yaml:"max_newline_ratio"`
}

// DefaultFineWebQuality returns the filter with FineWeb's thresholds.
func DefaultFineWebQuality() *FineWebQuality {
	return &FineWebQuality{MinLinePunct: 0.12, MaxShortLines: 0.67, ShortLineLen: defaultShortLineChar,
		MaxCharDupRatio: 0.01, MaxNewlineRatio: 0.3}
}

// Name implements Rule.
func (f *FineWebQuality) Name() string { return fineWebRuleName }

// Reasons implements Rule.
func (f *FineWebQuality) Reasons() []string {
	return []string{FineWebEmpty, FineWebLinePunct, FineWebShortLines, FineWebCharDupRatio, FineWebNewlineRatio}
}

// Check implements Rule.
func (f *FineWebQuality) Check(d *shards.Document) (string, string) {
	text := d.Text
	stops := f.StopChars
	if stops == "" {
		stops = defaultFineWebStops
	}
	s := repPool.Get().(*repScratch)
	defer repPool.Put(s)
	s.tab.reset(64)
	lines, punct, short, dupChars := 0, 0, 0, 0
	rest := text
	for {
		i := strings.IndexByte(rest, '\n')
		line := rest
		if i >= 0 {
			line = rest[:i]
		}
		if strings.TrimSpace(line) != "" {
			lines++
			if r, _ := utf8.DecodeLastRuneInString(line); strings.ContainsRune(stops, r) {
				punct++
			}
			if len(line) <= f.ShortLineLen || utf8.RuneCountInString(line) <= f.ShortLineLen {
				short++
			}
			if s.tab.inc(maphash.String(lineSeed, line)) > 1 {
				dupChars += len(line)
			}
		}
		if i < 0 {
			break
		}
		rest = rest[i+1:]
	}
	if lines == 0 {
		return FineWebEmpty, "0"
	}
	r := float64(punct) / float64(lines)
	if f.MinLinePunct >= 0 && r < f.MinLinePunct && !(r == 0 && f.ExcludeZero) {
		return FineWebLinePunct, fmtRatio(r)
	}
	if r := float64(short) / float64(lines); f.MaxShortLines >= 0 && r > f.MaxShortLines {
		return FineWebShortLines, fmtRatio(r)
	}
	newlines := strings.Count(text, "\n")
	if f.MaxCharDupRatio >= 0 {
		if r := float64(dupChars) / float64(len(text)-newlines); r > f.MaxCharDupRatio {
			return FineWebCharDupRatio, fmtRatio(r)
		}
	}
	if f.MaxNewlineRatio >= 0 {
		words := countTokens(text)
		if words == 0 {
			return FineWebNewlineRatio, "inf"
		}
		if r := float64(newlines) / float64(words); r > f.MaxNewlineRatio {
			return FineWebNewlineRatio, fmtRatio(r)
		}
	}
	return "", ""
}
