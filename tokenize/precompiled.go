package tokenize

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// precompiled is the tokenizer.json "Precompiled" normalizer: the
// SentencePiece charsmap (a Darts double-array trie over UTF-8 keys and the
// NUL-terminated replacements it indexes) applied as the Hugging Face
// tokenizers library applies it, which differs from SentencePiece's own
// longest-match rewriting (spNormalizer): the text is cut into extended
// grapheme clusters; a cluster shorter than 6 bytes is looked up whole, and
// the first (shortest) key that is a prefix of it replaces the whole cluster
// (so "ﬁ" followed by a combining mark becomes "fi" and loses the mark, as
// there); a longer cluster, or one without a match, is rewritten char by
// char, a char without a key kept as it is.
//
// Grapheme clusters come from github.com/rivo/uniseg (already in the module
// graph through progressbar): the Unicode segmentation rules are hundreds
// of table-driven cases, which a hand-written copy would only get wrong.
type precompiled struct {
	trie       []uint32
	normalized string
	// ascii holds each ASCII char's replacement (and whether it has one), so
	// runs of ASCII text skip both the segmenter and the trie.
	ascii    [128]string
	asciiHas [128]bool
}

func newPrecompiled(b64 string) (*precompiled, error) {
	blob, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("normalizer Precompiled: precompiled_charsmap is not base64: %w", err)
	}
	units, normalized, err := parseCharsmap(blob)
	if err != nil {
		return nil, fmt.Errorf("normalizer Precompiled: charsmap: %w", err)
	}
	if !utf8.Valid(normalized) {
		return nil, errors.New("normalizer Precompiled: charsmap replacements are not valid UTF-8")
	}
	p := &precompiled{trie: units, normalized: string(normalized)}
	for c := 0; c < 128; c++ {
		p.ascii[c], p.asciiHas[c] = p.shortest(string(rune(c)))
	}
	return p, nil
}

// shortest returns the replacement of the shortest charsmap key that is a
// prefix of key (the first result of a common-prefix search, which stops at
// a NUL byte). Every index is checked against the array: a crafted charsmap
// yields "no match", never a panic.
func (p *precompiled) shortest(key string) (string, bool) {
	a := p.trie
	if len(a) == 0 {
		return "", false
	}
	pos := dartsOffset(a[0])
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == 0 {
			break
		}
		pos ^= uint32(c)
		if pos >= uint32(len(a)) {
			return "", false
		}
		unit := a[pos]
		if unit&(1<<31|0xff) != uint32(c) {
			return "", false
		}
		pos ^= dartsOffset(unit)
		if (unit>>8)&1 != 0 {
			if pos >= uint32(len(a)) {
				return "", false
			}
			v := int(a[pos] & (1<<31 - 1))
			if v > len(p.normalized) {
				return "", false
			}
			rest := p.normalized[v:]
			if end := strings.IndexByte(rest, 0); end >= 0 {
				rest = rest[:end]
			}
			return rest, true
		}
	}
	return "", false
}

// normalize rewrites s.
func (p *precompiled) normalize(s string) string {
	var b strings.Builder
	changed := false
	state := -1
	for i := 0; i < len(s); {
		c := s[i]
		// An ASCII char followed by another ASCII char (CR LF aside) or by
		// the end is a cluster of its own: no rule joins them, and the
		// state of the segmenter restarts after it.
		if c < utf8.RuneSelf && (i+1 == len(s) || (s[i+1] < utf8.RuneSelf && (c != '\r' || s[i+1] != '\n'))) {
			if p.asciiHas[c] {
				if !changed {
					b.Grow(len(s) + 16)
					b.WriteString(s[:i])
					changed = true
				}
				b.WriteString(p.ascii[c])
			} else if changed {
				b.WriteByte(c)
			}
			i++
			state = -1
			continue
		}
		var cluster string
		cluster, _, _, state = uniseg.FirstGraphemeClusterInString(s[i:], state)
		if len(cluster) < 6 {
			if r, ok := p.shortest(cluster); ok {
				if !changed {
					b.Grow(len(s) + 16)
					b.WriteString(s[:i])
					changed = true
				}
				b.WriteString(r)
				i += len(cluster)
				continue
			}
		}
		for j := 0; j < len(cluster); {
			_, size := utf8.DecodeRuneInString(cluster[j:])
			ch := cluster[j : j+size]
			if r, ok := p.shortest(ch); ok {
				if !changed {
					b.Grow(len(s) + 16)
					b.WriteString(s[:i+j])
					changed = true
				}
				b.WriteString(r)
			} else if changed {
				b.WriteString(ch)
			}
			j += size
		}
		i += len(cluster)
	}
	if !changed {
		return s
	}
	return b.String()
}
