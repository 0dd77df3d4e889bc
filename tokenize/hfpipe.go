package tokenize

import (
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/dlclark/regexp2"
	"golang.org/x/text/unicode/norm"
)

// pipeline is the Hugging Face tokenizer.json encoding path for files the
// plain byte-level fast path cannot express: added tokens matched before the
// model, normalizers, pre-tokenizers and a byte-level or character-level BPE
// model, each applied as the tokenizers library applies it.
type pipeline struct {
	raw        *addedMatcher // non-special added tokens with normalized=false
	normalized *addedMatcher // non-special added tokens with normalized=true
	norms      []normalizer
	pre        []preTokenizer
	bpe        *charBPE   // nil: the byte-level rank engine of the Tokenizer
	uni        *unigram   // a Unigram model
	wp         *wordPiece // a WordPiece model
	spm        *spModel   // a SentencePiece .model: the whole encoding
	// streamSafe reports that a text may be cut after a newline followed by
	// printable ASCII without changing its ids (false when a normalizer or
	// pre-tokenizer sees a whole segment, as Prepend or a whole-text BPE does).
	streamSafe bool
	decode     decoder
}

// normalizer rewrites one segment of text.
type normalizer func(s string) string

// preTokenizer splits each of pieces further, appending to dst. start is
// the normalized segment when it begins the whole input, else "": a piece
// that is an unchanged prefix of it starts at original offset 0, which
// Metaspace's "first" prepend scheme asks.
type preTokenizer func(dst, pieces []string, start string) []string

// encodeSegment appends the ids of one segment (text between added tokens).
func (t *Tokenizer) encodeSegment(dst []uint32, seg string, first bool) []uint32 {
	p := t.pipe
	for _, n := range p.norms {
		seg = n(seg)
	}
	if seg == "" {
		return dst
	}
	if p.normalized != nil {
		return p.normalized.split(seg, dst, func(dst []uint32, s string, f bool) []uint32 {
			return t.encodeNormalized(dst, s, first && f)
		})
	}
	return t.encodeNormalized(dst, seg, first)
}

func (t *Tokenizer) encodeNormalized(dst []uint32, seg string, first bool) []uint32 {
	p := t.pipe
	pieces := []string{seg}
	var buf []string
	start := ""
	if first {
		start = seg
	}
	for _, pre := range p.pre {
		buf = pre(buf[:0], pieces, start)
		pieces, buf = buf, pieces
	}
	for _, piece := range pieces {
		if piece == "" {
			continue
		}
		switch {
		case p.bpe != nil:
			dst = p.bpe.encodeWord(dst, piece)
		case p.uni != nil:
			dst = p.uni.encode(dst, piece)
		case p.wp != nil:
			dst = p.wp.encode(dst, piece)
		default:
			dst = t.appendPiece(dst, piece)
		}
	}
	return dst
}

// appendPipeline encodes text with the pipeline: non-special added tokens
// first, then every segment between them.
func (t *Tokenizer) appendPipeline(dst []uint32, text string) []uint32 {
	p := t.pipe
	if p.spm != nil {
		return p.spm.encode(dst, text)
	}
	if p.raw == nil {
		return t.encodeSegment(dst, text, true)
	}
	return p.raw.split(text, dst, t.encodeSegment)
}

// addedToken is a non-special added token and its matching flags.
type addedToken struct {
	content                    string
	id                         uint32
	lstrip, rstrip, singleWord bool
}

// addedMatcher finds added tokens leftmost-longest, as the tokenizers
// library's Aho-Corasick matcher does.
type addedMatcher struct {
	byText  map[string]*addedToken
	lengths [256][]int // per first byte: the token lengths, longest first
}

func newAddedMatcher(toks []addedToken) *addedMatcher {
	if len(toks) == 0 {
		return nil
	}
	m := &addedMatcher{byText: make(map[string]*addedToken, len(toks))}
	for i := range toks {
		a := &toks[i]
		if a.content == "" {
			continue
		}
		m.byText[a.content] = a
		b := a.content[0]
		ls := m.lengths[b]
		found := false
		for _, l := range ls {
			if l == len(a.content) {
				found = true
			}
		}
		if !found {
			ls = append(ls, len(a.content))
			for j := len(ls) - 1; j > 0 && ls[j] > ls[j-1]; j-- {
				ls[j], ls[j-1] = ls[j-1], ls[j]
			}
			m.lengths[b] = ls
		}
	}
	return m
}

// isWordChar is the tokenizers library's test for single_word boundaries.
func isWordChar(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' }

// find returns the leftmost-longest added token at or after from: its
// match span (with lstrip/rstrip whitespace) and the token.
func (m *addedMatcher) find(s string, from int) (start, end int, tok *addedToken) {
	for i := from; i < len(s); i++ {
		ls := m.lengths[s[i]]
		if ls == nil {
			continue
		}
		for _, l := range ls {
			if i+l > len(s) {
				continue
			}
			a := m.byText[s[i:i+l]]
			if a == nil {
				continue
			}
			st, en := i, i+l
			if a.singleWord {
				if r, _ := utf8.DecodeLastRuneInString(s[:st]); st > 0 && isWordChar(r) {
					continue
				}
				if r, _ := utf8.DecodeRuneInString(s[en:]); en < len(s) && isWordChar(r) {
					continue
				}
			}
			if a.lstrip {
				for st > from {
					r, w := utf8.DecodeLastRuneInString(s[:st])
					if !unicode.IsSpace(r) {
						break
					}
					st -= w
				}
			}
			if a.rstrip {
				for en < len(s) {
					r, w := utf8.DecodeRuneInString(s[en:])
					if !unicode.IsSpace(r) {
						break
					}
					en += w
				}
			}
			return st, en, a
		}
	}
	return -1, -1, nil
}

// split encodes s: added tokens as their ids, the text between them with
// seg (first is true for the segment at the start of s).
func (m *addedMatcher) split(s string, dst []uint32, seg func([]uint32, string, bool) []uint32) []uint32 {
	start := 0
	for start < len(s) {
		st, en, a := m.find(s, start)
		if a == nil {
			break
		}
		if st > start {
			dst = seg(dst, s[start:st], start == 0)
		}
		dst = append(dst, a.id)
		start = en
	}
	if start < len(s) {
		dst = seg(dst, s[start:], start == 0)
	}
	return dst
}

// Normalizers.

func normNFC(s string) string  { return norm.NFC.String(s) }
func normNFD(s string) string  { return norm.NFD.String(s) }
func normNFKC(s string) string { return norm.NFKC.String(s) }
func normNFKD(s string) string { return norm.NFKD.String(s) }

// normLowercase lowercases rune by rune, as Rust's char::to_lowercase does
// (no context-dependent final sigma). That is Go's unicode.ToLower but for
// the one unconditional multi-rune mapping of SpecialCasing.txt: U+0130 (İ)
// becomes "i\u0307", not "i".
func normLowercase(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			s = strings.Map(func(r rune) rune {
				if r == '\u0130' {
					return r // expanded below
				}
				return unicode.ToLower(r)
			}, s)
			return strings.ReplaceAll(s, "\u0130", "i\u0307")
		}
	}
	return s
}

func normPrepend(p string) normalizer {
	return func(s string) string {
		if s == "" {
			return s
		}
		return p + s
	}
}

func normReplaceString(old, repl string) normalizer {
	return func(s string) string {
		if old == "" {
			return s
		}
		return strings.ReplaceAll(s, old, repl)
	}
}

func normReplaceRegex(re *regexp2.Regexp, repl string) normalizer {
	return func(s string) string {
		var b strings.Builder
		last := 0
		for _, sp := range regexMatches(re, s) {
			b.WriteString(s[last:sp[0]])
			b.WriteString(repl)
			last = sp[1]
		}
		if last == 0 {
			return s
		}
		b.WriteString(s[last:])
		return b.String()
	}
}

func normStrip(left, right bool) normalizer {
	return func(s string) string {
		if left {
			s = strings.TrimLeftFunc(s, unicode.IsSpace)
		}
		if right {
			s = strings.TrimRightFunc(s, unicode.IsSpace)
		}
		return s
	}
}

// regexMatches returns the byte spans of the non-overlapping matches of re
// in s. regexp2 works on runes; an invalid UTF-8 byte is one rune (U+FFFD),
// as Go's []rune conversion makes it, so the spans map back exactly.
func regexMatches(re *regexp2.Regexp, s string) [][2]int {
	runes := []rune(s)
	offs := make([]int, 0, len(runes)+1)
	for i := 0; i < len(s); {
		_, w := utf8.DecodeRuneInString(s[i:])
		offs = append(offs, i)
		i += w
	}
	offs = append(offs, len(s))
	var out [][2]int
	m, err := re.FindRunesMatch(runes)
	for err == nil && m != nil {
		if m.Length > 0 {
			out = append(out, [2]int{offs[m.Index], offs[m.Index+m.Length]})
		}
		m, err = re.FindNextMatch(m)
	}
	return out
}

// Split behaviours.
const (
	behRemoved = iota
	behIsolated
	behMergedWithPrevious
	behMergedWithNext
	behContiguous
)

type span struct {
	a, b  int
	match bool
}

// applyBehavior turns the matches of one piece into pieces, as the
// tokenizers library's NormalizedString::split does.
func applyBehavior(dst []string, s string, matches [][2]int, behavior int, invert bool) []string {
	var parts []span
	last := 0
	for _, m := range matches {
		if m[0] > last {
			parts = append(parts, span{last, m[0], invert})
		}
		parts = append(parts, span{m[0], m[1], !invert})
		last = m[1]
	}
	if last < len(s) {
		parts = append(parts, span{last, len(s), invert})
	}
	var out []span
	switch behavior {
	case behRemoved:
		for _, p := range parts {
			if !p.match {
				out = append(out, p)
			}
		}
	case behIsolated:
		out = parts
	case behMergedWithPrevious:
		prev := false
		for _, p := range parts {
			if p.match && !prev && len(out) > 0 {
				out[len(out)-1].b = p.b
			} else {
				out = append(out, span{p.a, p.b, false})
			}
			prev = p.match
		}
	case behMergedWithNext:
		prev := false
		for i := len(parts) - 1; i >= 0; i-- {
			p := parts[i]
			if p.match && !prev && len(out) > 0 {
				out[len(out)-1].a = p.a
			} else {
				out = append(out, span{p.a, p.b, false})
			}
			prev = p.match
		}
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	case behContiguous:
		prev := false
		for _, p := range parts {
			if p.match == prev && len(out) > 0 {
				out[len(out)-1].b = p.b
			} else {
				out = append(out, span{p.a, p.b, false})
			}
			prev = p.match
		}
	}
	for _, p := range out {
		if p.b > p.a {
			dst = append(dst, s[p.a:p.b])
		}
	}
	return dst
}

// preSplitFunc pre-tokenizes with a hand-written scanner of a known pattern
// (every character belongs to a match, so Isolated is the scan itself).
func preSplitFunc(f splitFunc) preTokenizer {
	return func(dst, pieces []string, _ string) []string {
		ct := classTable()
		for _, s := range pieces {
			for p := 0; p < len(s); {
				e := f(ct, s, p)
				dst = append(dst, s[p:e])
				p = e
			}
		}
		return dst
	}
}

func preSplitRegex(re *regexp2.Regexp, behavior int, invert bool) preTokenizer {
	return func(dst, pieces []string, _ string) []string {
		for _, s := range pieces {
			dst = applyBehavior(dst, s, regexMatches(re, s), behavior, invert)
		}
		return dst
	}
}

func stringMatches(s, pat string) [][2]int {
	var out [][2]int
	if pat == "" {
		return nil
	}
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], pat)
		if j < 0 {
			break
		}
		out = append(out, [2]int{i + j, i + j + len(pat)})
		i += j + len(pat)
	}
	return out
}

func preSplitString(pat string, behavior int, invert bool) preTokenizer {
	return func(dst, pieces []string, _ string) []string {
		for _, s := range pieces {
			if !strings.Contains(s, pat) && !invert {
				dst = append(dst, s)
				continue
			}
			dst = applyBehavior(dst, s, stringMatches(s, pat), behavior, invert)
		}
		return dst
	}
}

// preFuncMatches pre-tokenizes with a per-rune class: runs of runes for
// which in reports true are the matches.
func runMatches(s string, in func(rune) bool, each bool) [][2]int {
	var out [][2]int
	start := -1
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		if in(r) {
			if each {
				out = append(out, [2]int{i, i + w})
			} else if start < 0 {
				start = i
			}
		} else if start >= 0 {
			out = append(out, [2]int{start, i})
			start = -1
		}
		i += w
	}
	if start >= 0 {
		out = append(out, [2]int{start, len(s)})
	}
	return out
}

// isNumeric is Rust's char::is_numeric: Nd, Nl and No.
func isNumeric(r rune) bool { return unicode.IsNumber(r) }

// isPunct is the tokenizers library's is_punc: ASCII punctuation or any
// Unicode P* character.
func isPunct(r rune) bool {
	if r < utf8.RuneSelf {
		return ('!' <= r && r <= '/') || (':' <= r && r <= '@') || ('[' <= r && r <= '`') || ('{' <= r && r <= '~')
	}
	// The library's (older) Unicode tables: see bertunicode.go.
	if unicode.IsPunct(r) {
		return !inRanges(hfNotPunct, r)
	}
	return inRanges(hfPunctExtra, r)
}

func preRuns(in func(rune) bool, each bool, behavior int) preTokenizer {
	return func(dst, pieces []string, _ string) []string {
		for _, s := range pieces {
			dst = applyBehavior(dst, s, runMatches(s, in, each), behavior, false)
		}
		return dst
	}
}

// preWhitespace is the Whitespace pre-tokenizer: the matches of
// \w+|[^\w\s]+, the rest removed.
func preWhitespace(dst, pieces []string, _ string) []string {
	class := func(r rune) int {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || unicode.Is(unicode.Pc, r):
			return 1
		case unicode.IsSpace(r):
			return 0
		}
		return 2
	}
	for _, s := range pieces {
		start, cur := -1, 0
		for i := 0; i < len(s); {
			r, w := utf8.DecodeRuneInString(s[i:])
			c := class(r)
			if c != cur && start >= 0 {
				dst = append(dst, s[start:i])
				start = -1
			}
			if c != 0 && start < 0 {
				start = i
			}
			cur = c
			i += w
		}
		if start >= 0 {
			dst = append(dst, s[start:])
		}
	}
	return dst
}

func preWhitespaceSplit(dst, pieces []string, _ string) []string {
	for _, s := range pieces {
		dst = append(dst, strings.Fields(s)...)
	}
	return dst
}

// preByteLevel is the ByteLevel pre-tokenizer for a byte-level model (whose
// vocabulary smelt keeps as bytes, so the byte-to-unicode map is implicit).
func preByteLevel(addPrefixSpace, useRegex bool) preTokenizer {
	return func(dst, pieces []string, _ string) []string {
		ct := classTable()
		for _, s := range pieces {
			if addPrefixSpace && !strings.HasPrefix(s, " ") {
				s = " " + s
			}
			if !useRegex {
				dst = append(dst, s)
				continue
			}
			for p := 0; p < len(s); {
				e := gpt2Next(ct, s, p)
				dst = append(dst, s[p:e])
				p = e
			}
		}
		return dst
	}
}

// Metaspace prepend schemes.
const (
	prependAlways = iota
	prependFirst
	prependNever
)

func preMetaspace(repl string, scheme int, split bool) preTokenizer {
	return func(dst, pieces []string, start string) []string {
		for _, s := range pieces {
			atStart := start != "" && s != "" && unsafe.StringData(s) == unsafe.StringData(start)
			s = strings.ReplaceAll(s, " ", repl)
			if (scheme == prependAlways || (scheme == prependFirst && atStart)) && !strings.HasPrefix(s, repl) {
				s = repl + s
			}
			if !split {
				dst = append(dst, s)
				continue
			}
			dst = applyBehavior(dst, s, stringMatches(s, repl), behMergedWithNext, false)
		}
		return dst
	}
}
