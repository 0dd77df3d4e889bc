package tokenize

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// wordPiece is a tokenizer.json WordPiece model (BERT), encoded as the
// tokenizers library's WordPiece::tokenize: a word longer than
// max_input_chars_per_word characters is the unknown token; otherwise the
// longest vocabulary entry that starts the rest of the word is taken,
// greedily, every piece after the first looked up with the
// continuing_subword_prefix ("##") before it; a word with a remainder no
// entry starts is the unknown token as a whole.
type wordPiece struct {
	vocab    map[string]uint32
	idToTok  []string
	prefix   string
	maxChars int
	maxLen   int // the longest vocabulary entry in bytes, prefix included
	unk      uint32
}

func newWordPiece(vocab map[string]uint32, m hfModel) (*wordPiece, error) {
	w := &wordPiece{vocab: vocab, prefix: "##", maxChars: 100}
	if m.Prefix != nil {
		w.prefix = *m.Prefix
	}
	if m.MaxChars != nil {
		if *m.MaxChars < 0 {
			return nil, fmt.Errorf("WordPiece max_input_chars_per_word %d is negative", *m.MaxChars)
		}
		w.maxChars = *m.MaxChars
	}
	unk := "[UNK]"
	if m.UnkToken != nil {
		unk = *m.UnkToken
	}
	id, ok := vocab[unk]
	if !ok {
		return nil, fmt.Errorf("WordPiece unk_token %q is not in the vocabulary (a word no entry covers could not be encoded)", unk)
	}
	w.unk = id
	maxID := uint32(0)
	for k, id := range vocab {
		maxID = max(maxID, id)
		w.maxLen = max(w.maxLen, len(k))
	}
	if maxID > 1<<26 {
		return nil, fmt.Errorf("WordPiece vocab id %d is too large", maxID)
	}
	w.idToTok = make([]string, maxID+1)
	for k, id := range vocab {
		w.idToTok[id] = k
	}
	return w, nil
}

// encode appends the ids of one pre-tokenized word.
func (w *wordPiece) encode(dst []uint32, word string) []uint32 {
	if utf8.RuneCountInString(word) > w.maxChars {
		return append(dst, w.unk)
	}
	n := len(dst)
	// buf holds the prefix and the rest of the word, so every candidate
	// after the first is a slice of it (the map lookup of string(b) does
	// not allocate).
	var stack [128]byte
	buf := append(stack[:0], w.prefix...)
	buf = append(buf, word...)
	for start := 0; start < len(word); {
		lo := 0 // where the candidate starts in buf
		if start > 0 {
			lo = len(w.prefix)
			copy(buf[lo:], word[start:])
		}
		// No entry is longer than maxLen bytes: start there, on a char
		// boundary, and step back one char at a time.
		end := len(word)
		if lim := start + w.maxLen - lo; lim < end {
			end = lim
			for end > start && !utf8.RuneStart(word[end]) {
				end--
			}
		}
		found := false
		for end > start {
			var cand []byte
			if start > 0 {
				cand = buf[:lo+end-start]
			} else {
				cand = buf[len(w.prefix) : len(w.prefix)+end]
			}
			if id, ok := w.vocab[string(cand)]; ok {
				dst = append(dst, id)
				found = true
				break
			}
			_, size := utf8.DecodeLastRuneInString(word[start:end])
			end -= size
		}
		if !found {
			return append(dst[:n], w.unk)
		}
		start = end
	}
	return dst
}

// token is how a WordPiece token decodes on its own: a continuation
// without its prefix, any other token with a space before it (the
// library's WordPiece decoder joins words with spaces).
func (w *wordPiece) token(s string) string {
	if rest, ok := strings.CutPrefix(s, w.prefix); ok && w.prefix != "" {
		return rest
	}
	return " " + s
}

// normBert is the BertNormalizer: clean_text (drop NUL, U+FFFD and other
// characters of general category C but tab, LF and CR; whitespace becomes
// a space), handle_chinese_chars (spaces around CJK ideographs),
// strip_accents (NFD, then nonspacing marks dropped; by default on when
// lowercase is), lowercase, in that order.
func normBert(clean, chinese, strip, lower bool) normalizer {
	return func(s string) string {
		if clean || chinese {
			var b strings.Builder
			b.Grow(len(s))
			for _, r := range s {
				if clean {
					if r == 0 || r == utf8.RuneError || (r != '\t' && r != '\n' && r != '\r' && isOtherCategory(r)) {
						continue
					}
					if r == '\t' || r == '\n' || r == '\r' || unicode.IsSpace(r) {
						r = ' '
					}
				}
				if chinese && isCJKIdeograph(r) {
					b.WriteByte(' ')
					b.WriteRune(r)
					b.WriteByte(' ')
					continue
				}
				b.WriteRune(r)
			}
			s = b.String()
		}
		if strip {
			s = strings.Map(func(r rune) rune {
				if (unicode.Is(unicode.Mn, r) && !inRanges(hfKept, r)) || inRanges(hfMnExtra, r) {
					return -1
				}
				return r
			}, norm.NFD.String(s))
		}
		if lower {
			s = normLowercase(s)
		}
		return s
	}
}

// isOtherCategory reports general category C as the tokenizers library
// sees it: Cc, Cf, Co and Cs in its tables (unassigned code points are kept
// there; see bertunicode.go).
func isOtherCategory(r rune) bool {
	if r < 0x20 || (0x7f <= r && r < 0xa0) {
		return true
	}
	if r < 0x7f {
		return false
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs) && !inRanges(hfKept, r)
}

// isCJKIdeograph is the BERT definition of a Chinese character: the CJK
// Unified Ideographs blocks and their extensions A to E, and the
// compatibility ideographs.
func isCJKIdeograph(r rune) bool {
	return (0x4E00 <= r && r <= 0x9FFF) || (0x3400 <= r && r <= 0x4DBF) || (0x20000 <= r && r <= 0x2A6DF) ||
		(0x2A700 <= r && r <= 0x2B73F) || (0x2B740 <= r && r <= 0x2B81F) || (0x2B920 <= r && r <= 0x2CEAF) ||
		(0xF900 <= r && r <= 0xFAFF) || (0x2F800 <= r && r <= 0x2FA1F)
}

// bertNormalizerOptions reads a BertNormalizer's flags with the library's
// defaults (all on; strip_accents null: as lowercase).
func bertNormalizerOptions(c *hfComponent) normalizer {
	get := func(p *bool, def bool) bool {
		if p == nil {
			return def
		}
		return *p
	}
	lower := get(c.Lowercase, true)
	return normBert(get(c.CleanText, true), get(c.HandleChinese, true), get(c.StripAccents, lower), lower)
}
