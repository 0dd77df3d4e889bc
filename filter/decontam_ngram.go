package filter

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Normalisation and n-gram hashing shared by `smelt decontam index` and the
// decontam rule, so that an eval set and a crawl document see the same
// words.
//
// The rule follows GPT-3 (Brown et al. 2020, appendix C) and
// lm-eval-harness's janitor, which lower-case the text, delete punctuation
// and split on white space, and adds Unicode folding so that look-alike
// text cannot evade it:
//
//  1. The text is NFKC-normalised: a decomposed accent (e + U+0301) is the
//     precomposed é, the ligature "ﬁ" is "fi", fullwidth "Ｔｅｓｔ" is "Test".
//     Combining marks that remain are part of their word ("café" is not
//     "cafe").
//  2. Each character is lower-cased (unicode.ToLower).
//  3. Letters, digits and combining marks make words; white space and
//     control characters separate them; everything else (punctuation,
//     symbols, invisible format characters such as the soft hyphen, the
//     zero-width space and joiners and the BOM, variation selectors) is
//     deleted without separating: "don't" is "dont", "e-mail" is
//     "email", "5,000" is "5000".
//  4. WikiText's tokenisation is undone: its joiners " @-@ ", " @,@ " and
//     " @.@ " are deleted with their spaces, and so is the space before a
//     clitic (" 's", " 're", " 've", " 'll", " 'd", " 'm", " 't" followed
//     by a character that is not an ASCII letter): "well @-@ known" is
//     "wellknown" as "well-known" is, "dog 's" is "dogs" as "dog's" is.
//
// wordSpan is one normalised word: its byte range in the original text and
// the hash of its lower-cased characters.
type wordSpan struct {
	start, end int32
	h          uint64
}

// Words are hashed with FNV-1a (fnvOffset, fnvPrime from features.go) and
// mix64 (gopher.go); the index file stores these hashes, so changing any of
// them means a new index format (indexMagic).
const (
	// ngramMul is the odd multiplier of the polynomial that combines word
	// hashes into an n-gram hash (rolled in O(1) per word).
	ngramMul = 0x9E3779B97F4A7C15
)

// ASCII character classes (NFKC leaves ASCII as it is).
const (
	asciiDelete = 0 // punctuation and symbols: deleted
	asciiSpace  = 1 // white space and control characters: separate words
)

// asciiClass is, for each ASCII byte, its lower-case form when it belongs
// to a word, else asciiDelete or asciiSpace.
var asciiClass = func() (t [128]byte) {
	for c := 0; c < 0x20; c++ {
		t[c] = asciiSpace
	}
	t[' '], t[0x7f] = asciiSpace, asciiSpace
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c)
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = byte(c)
		t[c-'a'+'A'] = byte(c)
	}
	return t
}()

// wordScanner builds words from normalised runes; each word's byte range
// is in the original text.
type wordScanner struct {
	dst []wordSpan
	in  bool
	cur wordSpan
}

func (w *wordScanner) end() {
	if w.in {
		w.cur.h = mix64(w.cur.h)
		w.dst = append(w.dst, w.cur)
		w.in = false
	}
}

// word adds the lower-cased character of the original bytes [from, to).
func (w *wordScanner) word(from, to int, lower rune) {
	if !w.in {
		w.in = true
		w.cur = wordSpan{start: int32(from), h: fnvOffset}
	}
	w.cur.end = int32(to)
	if lower < utf8.RuneSelf {
		w.cur.h = (w.cur.h ^ uint64(lower)) * fnvPrime
		return
	}
	var buf [utf8.UTFMax]byte
	n := utf8.EncodeRune(buf[:], lower)
	for _, b := range buf[:n] {
		w.cur.h = (w.cur.h ^ uint64(b)) * fnvPrime
	}
}

// rune classifies one normalised non-ASCII character taken from the
// original bytes [from, to).
func (w *wordScanner) rune(from, to int, r rune) {
	switch {
	case r == utf8.RuneError:
		w.end()
	case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) && !unicode.Is(unicode.Variation_Selector, r):
		w.word(from, to, unicode.ToLower(r))
	case unicode.IsSpace(r) || unicode.IsControl(r):
		w.end()
	default:
		// Punctuation, symbols, format characters: deleted.
	}
}

// isWikiJoiner reports whether s starts with " @-@ ", " @,@ " or " @.@ ".
func isWikiJoiner(s string) bool {
	return len(s) >= 5 && s[1] == '@' && s[3] == '@' && s[4] == ' ' && (s[2] == '-' || s[2] == ',' || s[2] == '.')
}

// isClitic reports whether s starts with a space, an apostrophe and one of
// the clitics s, re, ve, ll, d, m, t not followed by an ASCII letter.
func isClitic(s string) bool {
	if len(s) < 3 || s[0] != ' ' || s[1] != '\'' {
		return false
	}
	for _, c := range [...]string{"s", "re", "ve", "ll", "d", "m", "t"} {
		if len(s) >= 2+len(c) && s[2:2+len(c)] == c {
			if rest := s[2+len(c):]; rest == "" || rest[0] >= utf8.RuneSelf || asciiClass[rest[0]] < 'a' {
				return true
			}
		}
	}
	return false
}

// normWords appends the normalised words of text to dst (see the rule
// above). Documents larger than 2 GiB are not supported (offsets are
// int32; records are capped far below that).
func normWords(text string, dst []wordSpan) []wordSpan {
	w := wordScanner{dst: dst}
	var it norm.Iter
	var seg []byte
	for i := 0; i < len(text); {
		// The longest prefix that NFKC leaves as it is (all of an ASCII
		// text): its characters are classified in place.
		n := i + norm.NFKC.QuickSpanString(text[i:])
		for i < n {
			c := text[i]
			if c < utf8.RuneSelf {
				switch l := asciiClass[c]; l {
				case asciiSpace:
					if c == ' ' && i+1 < len(text) && (text[i+1] == '@' || text[i+1] == '\'') {
						if isWikiJoiner(text[i:]) {
							i += len(" @-@ ")
							continue
						}
						if isClitic(text[i:]) {
							i++
							continue
						}
					}
					w.end()
				case asciiDelete:
				default:
					w.word(i, i+1, rune(l))
				}
				i++
				continue
			}
			r, size := utf8.DecodeRuneInString(text[i:])
			w.rune(i, i+size, r)
			i += size
		}
		if i >= len(text) {
			break
		}
		// A segment NFKC changes: its normalised characters all take the
		// segment's original byte range.
		// (Next hands out a long expansion, "…" to "...", in pieces
		// before Pos moves.)
		it.InitString(norm.NFKC, text[i:])
		seg = seg[:0]
		for {
			seg = append(seg, it.Next()...)
			if it.Pos() > 0 || it.Done() {
				break
			}
		}
		to := i + max(it.Pos(), 1)
		for _, r := range string(seg) {
			if r < utf8.RuneSelf {
				switch l := asciiClass[r]; l {
				case asciiSpace:
					w.end()
				case asciiDelete:
				default:
					w.word(i, to, rune(l))
				}
				continue
			}
			w.rune(i, to, r)
		}
		i = to
	}
	w.end()
	return w.dst
}

// ngramHashes calls f(i, h) for every n-gram of words, i being the index of
// its first word, in order; f returns false to stop. Texts with fewer than
// n words have no n-grams.
func ngramHashes(words []wordSpan, n int, f func(i int, h uint64) bool) {
	if n <= 0 || len(words) < n {
		return
	}
	// top = ngramMul^(n-1), the weight of the word leaving the window.
	top := uint64(1)
	for k := 1; k < n; k++ {
		top *= ngramMul
	}
	var h uint64
	for k := 0; k < n; k++ {
		h = h*ngramMul + words[k].h
	}
	for i := 0; ; i++ {
		if !f(i, mix64(h)) {
			return
		}
		if i+n >= len(words) {
			return
		}
		h = (h-words[i].h*top)*ngramMul + words[i+n].h
	}
}
