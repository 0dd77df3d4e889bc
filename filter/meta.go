package filter

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/smelt-dev/smelt/shards"
)

// Language and URL reasons.
const (
	LangNotListed   = "lang/not_listed"
	LangLowScore    = "lang/low_score"
	URLBlockedHost  = "url/blocked_domain"
	URLBlockedMatch = "url/blocked_substring"
)

// Language keeps documents whose detected language (Document.Lang, set by
// ingest) is listed, with a confidence of at least MinScore (datatrove's
// LanguageFilter default is 0.65, as in FineWeb).
type Language struct {
	Languages []string `yaml:"languages"`
	MinScore  float64  `yaml:"min_score"`
	// MinScores overrides MinScore per language, as FineWeb-2 sets one
	// confidence threshold per language (language code -> minimum score).
	MinScores map[string]float64 `yaml:"min_scores,omitempty"`
}

// Name implements Rule.
func (l *Language) Name() string { return "language" }

// Reasons implements Rule.
func (l *Language) Reasons() []string { return []string{LangNotListed, LangLowScore} }

// Check implements Rule.
func (l *Language) Check(d *shards.Document) (string, string) {
	if len(l.Languages) > 0 && !slices.Contains(l.Languages, d.Lang) {
		if d.Lang == "" {
			return LangNotListed, "none"
		}
		return LangNotListed, d.Lang
	}
	min := l.MinScore
	if m, ok := l.MinScores[d.Lang]; ok {
		min = m
	}
	if d.LangScore < min {
		return LangLowScore, strconv.FormatFloat(d.LangScore, 'f', 4, 64)
	}
	return "", ""
}

// URLBlock drops documents whose URL's host is, or is under, a blocked
// domain, or whose lowercased URL contains a blocked substring.
type URLBlock struct {
	Domains    []string `yaml:"domains"`
	Substrings []string `yaml:"substrings"`
}

// Name implements Rule.
func (u *URLBlock) Name() string { return "url" }

// Reasons implements Rule.
func (u *URLBlock) Reasons() []string { return []string{URLBlockedHost, URLBlockedMatch} }

// Check implements Rule.
func (u *URLBlock) Check(d *shards.Document) (string, string) {
	if d.URL == "" {
		return "", ""
	}
	lower := strings.ToLower(d.URL)
	if len(u.Domains) > 0 {
		host := lower
		if p, err := url.Parse(lower); err == nil && p.Host != "" {
			host = p.Hostname()
		}
		host = strings.TrimSuffix(host, ".")
		for _, dom := range u.Domains {
			if host == dom || strings.HasSuffix(host, "."+dom) {
				return URLBlockedHost, dom
			}
		}
	}
	for _, s := range u.Substrings {
		if strings.Contains(lower, s) {
			return URLBlockedMatch, s
		}
	}
	return "", ""
}

// LoadURLBlockList reads a block list: one entry per line, "#" starts a
// comment. An entry that looks like a host name (has a dot, no "/", no
// space) blocks that domain and its subdomains; any other entry is a
// substring of the URL. Entries are lowercased.
func LoadURLBlockList(path string) (*URLBlock, error) {
	lines, err := readListFile(path)
	if err != nil {
		return nil, err
	}
	u := &URLBlock{}
	for _, e := range lines {
		e = strings.ToLower(e)
		if strings.Contains(e, ".") && !strings.ContainsAny(e, "/ :?=") {
			u.Domains = append(u.Domains, strings.TrimPrefix(e, "."))
		} else {
			u.Substrings = append(u.Substrings, e)
		}
	}
	return u, nil
}

// LoadWordList reads a word list (one entry per line, "#" comments),
// lowercased, for C4.BadWords.
func LoadWordList(path string) ([]string, error) {
	lines, err := readListFile(path)
	if err != nil {
		return nil, err
	}
	for i := range lines {
		lines[i] = strings.ToLower(lines[i])
	}
	return lines, nil
}

func readListFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read list: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read list %s: %w", path, err)
	}
	return out, nil
}
