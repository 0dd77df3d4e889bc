package tokenize

import (
	"sync"
	"unicode"
	"unicode/utf8"
)

// Character-class flags used by the hand-written pre-tokenisers. They follow
// the definitions used by github.com/dlclark/regexp2 (and so tiktoken-go):
// \s is unicode.IsSpace, \p{X} is Go's unicode table X.
const (
	fL  uint8 = 1 << iota // \p{L}
	fN                    // \p{N}
	fS                    // \s
	fNL                   // \r or \n
	fU                    // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] (o200k "upper")
	fW                    // [\p{Ll}\p{Lm}\p{Lo}\p{M}] (o200k "lower")
	fM                    // \p{M}
)

// bmpClass holds the flags of every rune in the Basic Multilingual Plane, so
// the scanners never binary-search Unicode tables on the hot path. Built once
// on first use (about 10 ms).
var (
	bmpOnce  sync.Once
	bmpClass *[0x10000]uint8
)

func runeFlags(r rune) uint8 {
	var f uint8
	if unicode.IsLetter(r) {
		f |= fL
	}
	if unicode.IsNumber(r) {
		f |= fN
	}
	if unicode.IsSpace(r) {
		f |= fS
	}
	if r == '\r' || r == '\n' {
		f |= fNL
	}
	isM := unicode.IsMark(r)
	if isM {
		f |= fM
	}
	lm := unicode.Is(unicode.Lm, r)
	lo := unicode.Is(unicode.Lo, r)
	if unicode.Is(unicode.Lu, r) || unicode.Is(unicode.Lt, r) || lm || lo || isM {
		f |= fU
	}
	if unicode.Is(unicode.Ll, r) || lm || lo || isM {
		f |= fW
	}
	return f
}

func classTable() *[0x10000]uint8 {
	bmpOnce.Do(func() {
		t := new([0x10000]uint8)
		for r := rune(0); r < 0x10000; r++ {
			t[r] = runeFlags(r)
		}
		bmpClass = t
	})
	return bmpClass
}

// classAt returns the flags and byte width of the character at s[i]. An
// invalid UTF-8 byte is one character of width 1 with no flags (regexp2 sees
// it as U+FFFD, a symbol, which has no flags either), so every byte string
// pre-tokenises and decode(encode(x)) == x.
func classAt(ct *[0x10000]uint8, s string, i int) (uint8, int) {
	b := s[i]
	if b < utf8.RuneSelf {
		return ct[b], 1
	}
	r, w := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && w == 1 {
		return 0, 1
	}
	if r < 0x10000 {
		return ct[r], w
	}
	return runeFlags(r), w
}

const fPunct = fL | fN | fS // a "punctuation" char is one with none of these

// scanWhile returns the end of the run of characters starting at i whose
// flags intersect want.
func scanWhile(ct *[0x10000]uint8, s string, i int, want uint8) int {
	for i < len(s) {
		b := s[i]
		if b < utf8.RuneSelf {
			if ct[b]&want == 0 {
				return i
			}
			i++
			continue
		}
		f, w := classAt(ct, s, i)
		if f&want == 0 {
			return i
		}
		i += w
	}
	return i
}

// scanPunct returns the end of the run of characters starting at i that are
// none of letter, number, whitespace ([^\s\p{L}\p{N}]+).
func scanPunct(ct *[0x10000]uint8, s string, i int) int {
	for i < len(s) {
		b := s[i]
		if b < utf8.RuneSelf {
			if ct[b]&fPunct != 0 {
				return i
			}
			i++
			continue
		}
		f, w := classAt(ct, s, i)
		if f&fPunct != 0 {
			return i
		}
		i += w
	}
	return i
}

// scanSpace handles the whitespace alternatives at p, where s[p] is
// whitespace: `\s*[\r\n]+` when nl is set (cl100k, o200k), then
// `\s+(?!\S)`, then `\s+`.
func scanSpace(ct *[0x10000]uint8, s string, p int, nl bool) int {
	i, last, lastNL := p, p, -1
	for i < len(s) {
		f, w := classAt(ct, s, i)
		if f&fS == 0 {
			break
		}
		if f&fNL != 0 {
			lastNL = i + w
		}
		last = i
		i += w
	}
	if nl && lastNL >= 0 {
		return lastNL
	}
	if i == len(s) || last == p {
		return i
	}
	return last
}

// contraction matches 's|'t|'re|'ve|'m|'ll|'d at i (ASCII case-insensitive
// when fold is set) and returns its end, or i when there is none.
func contraction(s string, i int, fold bool) int {
	if i+1 >= len(s) || s[i] != '\'' {
		return i
	}
	lower := func(b byte) byte {
		if fold && 'A' <= b && b <= 'Z' {
			return b + 'a' - 'A'
		}
		return b
	}
	switch lower(s[i+1]) {
	case 's', 't', 'm', 'd':
		return i + 2
	case 'r', 'v':
		if i+2 < len(s) && lower(s[i+2]) == 'e' {
			return i + 3
		}
	case 'l':
		if i+2 < len(s) && lower(s[i+2]) == 'l' {
			return i + 3
		}
	}
	return i
}

// splitFunc returns the end of the pre-tokenisation piece that starts at p
// (p < len(s)); it reproduces one encoding's regular expression exactly.
type splitFunc func(ct *[0x10000]uint8, s string, p int) int

// Pattern names the pre-tokenisation rule of an encoding.
type Pattern int

// The pre-tokenisation patterns of the tiktoken encodings.
const (
	// PatternGPT2 is r50k_base/p50k_base/GPT-2 (and the cs336 trainer):
	// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
	PatternGPT2 Pattern = iota
	// PatternCL100K is cl100k_base:
	// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
	PatternCL100K
	// PatternO200K is o200k_base (see o200kPieces for the regular expression).
	PatternO200K
)

// Regexp returns the regular expression the pattern reproduces.
func (p Pattern) Regexp() string {
	switch p {
	case PatternCL100K:
		return `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	case PatternO200K:
		return `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?` +
			`|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?` +
			`|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	default:
		return `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	}
}

// String returns the pattern's short name.
func (p Pattern) String() string {
	switch p {
	case PatternCL100K:
		return "cl100k"
	case PatternO200K:
		return "o200k"
	default:
		return "gpt2"
	}
}

func (p Pattern) split() splitFunc {
	switch p {
	case PatternCL100K:
		return cl100kNext
	case PatternO200K:
		return o200kNext
	default:
		return gpt2Next
	}
}

func gpt2Next(ct *[0x10000]uint8, s string, p int) int {
	b := s[p]
	if b == '\'' {
		if e := contraction(s, p, false); e > p {
			return e
		}
	}
	if b == ' ' && p+1 < len(s) {
		f1, _ := classAt(ct, s, p+1)
		switch {
		case f1&fL != 0:
			return scanWhile(ct, s, p+1, fL)
		case f1&fN != 0:
			return scanWhile(ct, s, p+1, fN)
		case f1&fPunct == 0:
			return scanPunct(ct, s, p+1)
		}
	}
	f0, _ := classAt(ct, s, p)
	switch {
	case f0&fL != 0:
		return scanWhile(ct, s, p, fL)
	case f0&fN != 0:
		return scanWhile(ct, s, p, fN)
	case f0&fPunct == 0:
		return scanPunct(ct, s, p)
	}
	return scanSpace(ct, s, p, false)
}

func cl100kNext(ct *[0x10000]uint8, s string, p int) int { return cl100kLike(ct, s, p, 3) }

// qwenRegexp is Qwen 2/3's split: cl100k's with single digits.
const qwenRegexp = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

func qwenNext(ct *[0x10000]uint8, s string, p int) int { return cl100kLike(ct, s, p, 1) }

// cl100kLike is cl100k's scanner with \p{N}{1,digits}.
func cl100kLike(ct *[0x10000]uint8, s string, p int, digits int) int {
	b := s[p]
	if b == '\'' {
		if e := contraction(s, p, true); e > p {
			return e
		}
	}
	f0, w0 := classAt(ct, s, p)
	if f0&fL != 0 {
		return scanWhile(ct, s, p, fL)
	}
	if f0&(fL|fN|fNL) == 0 && p+w0 < len(s) {
		if f1, _ := classAt(ct, s, p+w0); f1&fL != 0 {
			return scanWhile(ct, s, p+w0, fL)
		}
	}
	if f0&fN != 0 {
		i, w := p+w0, 0
		for n := 1; n < digits && i < len(s); n++ {
			var f uint8
			if f, w = classAt(ct, s, i); f&fN == 0 {
				break
			}
			i += w
		}
		return i
	}
	start := -1
	if b == ' ' && p+1 < len(s) {
		if f1, _ := classAt(ct, s, p+1); f1&fPunct == 0 {
			start = p + 1
		}
	}
	if start < 0 && f0&fPunct == 0 {
		start = p
	}
	if start >= 0 {
		e := scanPunct(ct, s, start)
		for e < len(s) && (s[e] == '\r' || s[e] == '\n') {
			e++
		}
		return e
	}
	return scanSpace(ct, s, p, true)
}

// o200kWord tries `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+`
// then the optional contraction, from i, with the regular expression's
// backtracking; it returns the end of the match and whether there is one. It
// also reports whether the "upper" run at i is non-empty (for the second
// alternative).
func o200kWord(ct *[0x10000]uint8, s string, i int) (end int, ok bool, upperEnd int) {
	e, lastW := i, -1
	for e < len(s) {
		f, w := classAt(ct, s, e)
		if f&fU == 0 {
			break
		}
		if f&fW != 0 {
			lastW = e + w
		}
		e += w
	}
	if e < len(s) {
		if f, _ := classAt(ct, s, e); f&fW != 0 {
			return contraction(s, scanWhile(ct, s, e, fW), true), true, e
		}
	}
	if lastW >= 0 {
		return contraction(s, lastW, true), true, e
	}
	return 0, false, e
}

func o200kNext(ct *[0x10000]uint8, s string, p int) int {
	f0, w0 := classAt(ct, s, p)
	if f0&(fL|fN|fNL) == 0 {
		// The optional [^\r\n\p{L}\p{N}] prefix is taken first.
		var upperPrefixed int
		if p+w0 < len(s) {
			end, ok, ue := o200kWord(ct, s, p+w0)
			if ok {
				return end
			}
			upperPrefixed = ue
		}
		if f0&fM != 0 {
			// Without the prefix a mark is itself a "lower" character.
			end, _, _ := o200kWord(ct, s, p)
			return end
		}
		if upperPrefixed > p+w0 {
			return contraction(s, upperPrefixed, true)
		}
	} else if f0&fL != 0 {
		end, ok, ue := o200kWord(ct, s, p)
		if ok {
			return end
		}
		return contraction(s, ue, true)
	}
	if f0&fN != 0 {
		i, w := p+w0, 0
		for n := 1; n < 3 && i < len(s); n++ {
			var f uint8
			if f, w = classAt(ct, s, i); f&fN == 0 {
				break
			}
			i += w
		}
		return i
	}
	start := -1
	if s[p] == ' ' && p+1 < len(s) {
		if f1, _ := classAt(ct, s, p+1); f1&fPunct == 0 {
			start = p + 1
		}
	}
	if start < 0 && f0&fPunct == 0 {
		start = p
	}
	if start >= 0 {
		e := scanPunct(ct, s, start)
		for e < len(s) && (s[e] == '\r' || s[e] == '\n' || s[e] == '/') {
			e++
		}
		return e
	}
	return scanSpace(ct, s, p, true)
}
