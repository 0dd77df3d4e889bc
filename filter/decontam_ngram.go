package filter

import (
	"unicode"
	"unicode/utf8"
)

// Normalisation and n-gram hashing shared by `smelt decontam index` and the
// decontam rule, so that an eval set and a crawl document see the same
// words.
//
// GPT-3 (Brown et al. 2020, appendix C) lower-cased the text and folded
// punctuation and white space before taking 13-grams. Here a word is a
// maximal run of letters, digits and combining marks, lower-cased; every
// other character (punctuation, symbols, white space) only separates words.
// So "well-known", "well @-@ known" (WikiText's tokenised form) and
// "Well known" all give the words "well known", and "5,000" gives "5 000".

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

// isWordByte marks the ASCII bytes that belong to a word, lower-cased
// (0 = separator).
var asciiWord = func() (t [128]byte) {
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c)
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = byte(c)
		t[c-'a'+'A'] = byte(c)
	}
	return t
}()

// normWords appends the normalised words of text to dst. Documents larger
// than 2 GiB are not supported (offsets are int32; records are capped far
// below that).
func normWords(text string, dst []wordSpan) []wordSpan {
	in := false
	var cur wordSpan
	for i := 0; i < len(text); {
		c := text[i]
		var w int
		var lower rune
		if c < utf8.RuneSelf {
			w = 1
			if l := asciiWord[c]; l != 0 {
				lower = rune(l)
			} else {
				lower = -1
			}
		} else {
			r, n := utf8.DecodeRuneInString(text[i:])
			w = n
			if r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)) {
				lower = unicode.ToLower(r)
			} else {
				lower = -1
			}
		}
		if lower < 0 {
			if in {
				cur.end = int32(i)
				cur.h = mix64(cur.h)
				dst = append(dst, cur)
				in = false
			}
			i += w
			continue
		}
		if !in {
			in = true
			cur = wordSpan{start: int32(i), h: fnvOffset}
		}
		if lower < utf8.RuneSelf {
			cur.h = (cur.h ^ uint64(lower)) * fnvPrime
		} else {
			var buf [utf8.UTFMax]byte
			n := utf8.EncodeRune(buf[:], lower)
			for _, b := range buf[:n] {
				cur.h = (cur.h ^ uint64(b)) * fnvPrime
			}
		}
		i += w
	}
	if in {
		cur.end = int32(len(text))
		cur.h = mix64(cur.h)
		dst = append(dst, cur)
	}
	return dst
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
