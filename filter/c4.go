package filter

import (
	"strings"
	"unicode/utf8"

	"github.com/smelt-dev/smelt/shards"
)

// C4 reasons (Raffel et al. 2020, "Exploring the Limits of Transfer
// Learning with a Unified Text-to-Text Transformer", section 2.2).
const (
	C4LoremIpsum       = "c4/lorem_ipsum"
	C4CurlyBracket     = "c4/curly_bracket"
	C4TooFewSentences  = "c4/too_few_sentences"
	C4BadWord          = "c4/bad_word"
	c4ModifiedRuleName = "c4"
)

// C4 is the C4 "clean" filter. It removes lines and may drop the document;
// as a Modifier it reports how many bytes of text it removed. Lines are
// stripped of surrounding white space and the kept ones joined with "\n",
// as C4 does.
type C4 struct {
	// MaxWordLen removes lines with a word longer than this many
	// characters (1000; negative = off).
	MaxWordLen int `yaml:"max_word_len"`
	// RemoveCitations strips Wikipedia citation markers "[1]", "[edit]",
	// "[citation needed]" (on).
	RemoveCitations bool `yaml:"remove_citations"`
	// NoTerminalPunct removes lines that do not end in ".", "?", "!", '"'
	// or "'", or that end in "..." (on).
	NoTerminalPunct bool `yaml:"no_terminal_punct"`
	// MinWordsPerLine removes lines with fewer words (3; negative = off).
	MinWordsPerLine int `yaml:"min_words_per_line"`
	// LoremIpsum drops documents containing "lorem ipsum" (on).
	LoremIpsum bool `yaml:"lorem_ipsum"`
	// Javascript removes lines mentioning "javascript" (on).
	Javascript bool `yaml:"javascript"`
	// CurlyBracket drops documents containing "{" (on).
	CurlyBracket bool `yaml:"curly_bracket"`
	// Policy removes lines with "terms of use", "privacy policy", "cookie
	// policy", "uses cookies", "use of cookies" or "use cookies" (on).
	Policy bool `yaml:"policy"`
	// MinSentences drops documents with fewer sentences left (5;
	// negative = off). Sentences are counted with a simple splitter: a run
	// of ".", "!" or "?" followed by white space or the line's end ends
	// one, and every kept line counts at least one.
	MinSentences int `yaml:"min_sentences"`
	// BadWords, if set, drops documents containing any of these words
	// (lower case; C4 used the LDNOOBW list). Matched against lowercased
	// words; entries with a space are matched as substrings.
	BadWords []string `yaml:"bad_words"`
}

// DefaultC4 returns C4 with the published settings and no bad-words list.
func DefaultC4() *C4 {
	return &C4{MaxWordLen: 1000, RemoveCitations: true, NoTerminalPunct: true, MinWordsPerLine: 3,
		LoremIpsum: true, Javascript: true, CurlyBracket: true, Policy: true, MinSentences: 5}
}

var c4Policy = []string{"terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies"}

// Name implements Rule.
func (c *C4) Name() string { return c4ModifiedRuleName }

// Reasons implements Rule.
func (c *C4) Reasons() []string {
	rs := []string{C4LoremIpsum, C4CurlyBracket, C4TooFewSentences}
	if len(c.BadWords) > 0 {
		rs = append(rs, C4BadWord)
	}
	return rs
}

// Check implements Rule.
func (c *C4) Check(d *shards.Document) (string, string) {
	_, _, reason, value := c.Modify(d)
	return reason, value
}

// Modify implements Modifier.
func (c *C4) Modify(d *shards.Document) (string, int, string, string) {
	text := d.Text
	if len(c.BadWords) > 0 {
		if w := c.badWord(text); w != "" {
			return "", 0, C4BadWord, w
		}
	}
	var b strings.Builder
	b.Grow(len(text))
	sentences, kept := 0, 0
	var drop, value string
	forLines(text, func(line string) {
		if drop != "" {
			return
		}
		line = strings.TrimSpace(line)
		if c.MaxWordLen >= 0 && len(line) > c.MaxWordLen && hasLongWord(line, c.MaxWordLen) {
			return
		}
		if c.RemoveCitations && strings.IndexByte(line, '[') >= 0 {
			line = removeCitations(line)
		}
		if c.NoTerminalPunct && !endsTerminal(line) {
			return
		}
		if c.MinWordsPerLine >= 0 && countFields(line, c.MinWordsPerLine) < c.MinWordsPerLine {
			return
		}
		lower := ""
		if c.LoremIpsum || c.Javascript || c.Policy {
			lower = strings.ToLower(line)
		}
		if c.LoremIpsum && strings.Contains(lower, "lorem ipsum") {
			drop, value = C4LoremIpsum, "lorem ipsum"
			return
		}
		if c.Javascript && strings.Contains(lower, "javascript") {
			return
		}
		if c.CurlyBracket && strings.IndexByte(line, '{') >= 0 {
			drop, value = C4CurlyBracket, "{"
			return
		}
		if c.Policy {
			for _, p := range c4Policy {
				if strings.Contains(lower, p) {
					return
				}
			}
		}
		sentences += max(1, countSentences(line))
		if kept > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(line)
		kept++
	})
	if drop != "" {
		return "", 0, drop, value
	}
	if c.MinSentences >= 0 && sentences < c.MinSentences {
		return "", 0, C4TooFewSentences, fmtInt(sentences)
	}
	out := b.String()
	return out, len(text) - len(out), "", ""
}

func (c *C4) badWord(text string) string {
	lower := strings.ToLower(text)
	var words []string
	for _, bw := range c.BadWords {
		if strings.ContainsRune(bw, ' ') {
			if strings.Contains(lower, bw) {
				return bw
			}
			continue
		}
		if words == nil {
			var t tokens
			t.tokenize(lower)
			words = t.Words
		}
		for _, w := range words {
			if w == bw {
				return bw
			}
		}
	}
	return ""
}

// hasLongWord reports whether a white-space separated word of line has more
// than limit characters.
func hasLongWord(line string, limit int) bool {
	for _, w := range strings.Fields(line) {
		if len(w) > limit && utf8.RuneCountInString(w) > limit {
			return true
		}
	}
	return false
}

// countFields counts white-space separated words, stopping at limit.
func countFields(line string, limit int) int {
	n, in := 0, false
	for i := 0; i < len(line) && n < limit+1; {
		cl, w := classAt(line, i)
		if cl == 0 {
			in = false
		} else if !in {
			in = true
			n++
		}
		i += w
	}
	return n
}

func endsTerminal(line string) bool {
	if line == "" || strings.HasSuffix(line, "...") {
		return false
	}
	switch line[len(line)-1] {
	case '.', '?', '!', '"', '\'':
		return true
	}
	return false
}

// removeCitations deletes "[digits]", "[edit]" and "[citation needed]".
func removeCitations(line string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(line, '[')
		if i < 0 {
			break
		}
		j := strings.IndexByte(line[i:], ']')
		if j < 0 {
			break
		}
		inner := line[i+1 : i+j]
		if inner == "edit" || inner == "citation needed" || allDigits(inner) {
			b.WriteString(line[:i])
		} else {
			b.WriteString(line[:i+1])
			line = line[i+1:]
			continue
		}
		line = line[i+j+1:]
	}
	if b.Len() == 0 {
		return line
	}
	b.WriteString(line)
	return b.String()
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// countSentences counts runs of ".", "!" or "?" that are followed (after
// optional closing quotes or brackets) by white space or the end.
func countSentences(line string) int {
	n := 0
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c != '.' && c != '!' && c != '?' {
			continue
		}
		for i+1 < len(line) && (line[i+1] == '.' || line[i+1] == '!' || line[i+1] == '?') {
			i++
		}
		j := i + 1
		for j < len(line) && (line[j] == '"' || line[j] == '\'' || line[j] == ')' || line[j] == ']') {
			j++
		}
		if j == len(line) || line[j] == ' ' || line[j] == '\t' {
			n++
		}
	}
	return n
}
