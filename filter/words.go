package filter

import (
	"unicode"
	"unicode/utf8"
)

// Word tokenisation used by the rules.
//
// A token is a maximal run of non-space characters (Unicode white space
// separates tokens, as in Python's str.split() that Gopher and C4 use). A
// token with no letter, digit or combining mark is a "symbol word" (a lone
// "|", "»", "...", "-"). Every other token contributes a word: the token
// with its leading and trailing punctuation and symbols trimmed, so that
// "world." and "(world" are both "world". This keeps one allocation-free
// pass over the text and needs no language model; datatrove instead runs a
// language-specific word tokenizer (spaCy/NLTK) that splits punctuation
// into tokens of its own, which moves some ratios by a few percent on
// ordinary prose.

// charClass classifies ASCII bytes: 0 space, 1 word character, 2 other.
var charClass = func() (t [128]uint8) {
	for c := 0; c < 128; c++ {
		switch {
		case c == ' ' || (c >= '\t' && c <= '\r'):
			t[c] = 0
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			t[c] = 1
		default:
			t[c] = 2
		}
	}
	return t
}()

func runeClass(r rune) uint8 {
	switch {
	case unicode.IsSpace(r):
		return 0
	case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
		return 1
	default:
		return 2
	}
}

// classAt returns the class of the character at text[i] and its width.
func classAt(text string, i int) (uint8, int) {
	c := text[i]
	if c < utf8.RuneSelf {
		return charClass[c], 1
	}
	r, n := utf8.DecodeRuneInString(text[i:])
	if r == utf8.RuneError && n <= 1 {
		return 2, 1
	}
	return runeClass(r), n
}

// tokens is the result of tokenising one text.
type tokens struct {
	// Words are the trimmed non-symbol tokens, in order.
	Words []string
	// Total counts all tokens, symbol words included.
	Total int
	// Alpha counts the tokens that contain at least one letter.
	Alpha int
}

// tokenize splits text into tokens, reusing t.Words' storage.
func (t *tokens) tokenize(text string) {
	t.Words, t.Total, t.Alpha = t.Words[:0], 0, 0
	i := 0
	for i < len(text) {
		var cl uint8
		n := 1
		if c := text[i]; c < utf8.RuneSelf {
			cl = charClass[c]
		} else {
			cl, n = classAt(text, i)
		}
		if cl == 0 {
			i += n
			continue
		}
		// A token starts at i: find its end, its first and last word
		// characters, and whether it holds a letter.
		first, last := -1, -1
		letter := false
		for i < len(text) {
			if c := text[i]; c < utf8.RuneSelf {
				cl, n = charClass[c], 1
			} else {
				cl, n = classAt(text, i)
			}
			if cl == 0 {
				break
			}
			if cl == 1 {
				if first < 0 {
					first = i
				}
				last = i + n
				if !letter {
					c := text[i]
					if c < utf8.RuneSelf {
						letter = c > '9'
					} else {
						r, _ := utf8.DecodeRuneInString(text[i:])
						letter = unicode.IsLetter(r)
					}
				}
			}
			i += n
		}
		t.Total++
		if letter {
			t.Alpha++
		}
		if first >= 0 {
			t.Words = append(t.Words, text[first:last])
		}
	}
}

// countWords returns the number of tokens in text (symbol words included).
func countTokens(text string) int {
	n, in := 0, false
	for i := 0; i < len(text); {
		cl, w := classAt(text, i)
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
