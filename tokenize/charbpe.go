package tokenize

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// charBPE is a Hugging Face BPE model over characters (the SentencePiece
// conversions of Llama 2, Mistral and Gemma): a word starts as its
// characters (or, with byte_fallback, the <0xXX> tokens of a character not
// in the vocabulary), and the listed merges apply lowest rank first,
// leftmost on ties, exactly as the tokenizers library's Word::merge_all.
type charBPE struct {
	vocab        map[string]uint32
	idToTok      []string
	merges       map[uint64]uint64 // left<<32|right -> rank<<32|new id
	byteFallback bool
	byteIDs      [256]uint32
	haveBytes    bool
	unk          uint32
	haveUnk      bool
	fuseUnk      bool
	ignoreMerges bool
}

// sym is one symbol of a word being merged.
type sym struct {
	id         uint32
	prev, next int32
}

func (m *charBPE) encodeWord(dst []uint32, w string) []uint32 {
	if m.ignoreMerges {
		if id, ok := m.vocab[w]; ok {
			return append(dst, id)
		}
	}
	var buf [64]sym
	syms := buf[:0]
	lastUnk := false
	for i := 0; i < len(w); {
		_, n := utf8.DecodeRuneInString(w[i:])
		if id, ok := m.vocab[w[i:i+n]]; ok {
			syms = append(syms, sym{id: id})
			lastUnk = false
		} else if m.byteFallback && m.haveBytes {
			for j := i; j < i+n; j++ {
				syms = append(syms, sym{id: m.byteIDs[w[j]]})
			}
			lastUnk = false
		} else if m.haveUnk {
			if !(m.fuseUnk && lastUnk) {
				syms = append(syms, sym{id: m.unk})
			}
			lastUnk = true
		}
		i += n
	}
	if len(syms) == 0 {
		return dst
	}
	for i := range syms {
		syms[i].prev, syms[i].next = int32(i-1), int32(i+1)
	}
	syms[len(syms)-1].next = -1
	if len(syms) > 1 {
		m.mergeAll(syms)
	}
	for i := int32(0); i >= 0; i = syms[i].next {
		dst = append(dst, syms[i].id)
	}
	return dst
}

func (m *charBPE) pair(a, b uint32) (rank, id uint32, ok bool) {
	v, ok := m.merges[uint64(a)<<32|uint64(b)]
	return uint32(v >> 32), uint32(v), ok
}

// mergeAll merges in place with a min-heap of candidates rank<<32|position;
// a popped candidate whose pair has changed since it was pushed is skipped.
// Symbol 0 always stays the head of the list (merges keep the left one).
func (m *charBPE) mergeAll(syms []sym) {
	h := make(u64Heap, 0, len(syms))
	for i := 0; i+1 < len(syms); i++ {
		if r, _, ok := m.pair(syms[i].id, syms[i+1].id); ok {
			h = append(h, uint64(r)<<32|uint64(i))
		}
	}
	h.init()
	gone := make([]bool, len(syms))
	for len(h) > 0 {
		c := h.pop()
		rank, i := uint32(c>>32), int32(uint32(c))
		if gone[i] || syms[i].next < 0 {
			continue
		}
		j := syms[i].next
		r, nid, ok := m.pair(syms[i].id, syms[j].id)
		if !ok || r != rank {
			continue
		}
		syms[i].id = nid
		gone[j] = true
		syms[i].next = syms[j].next
		if k := syms[j].next; k >= 0 {
			syms[k].prev = i
			if r, _, ok := m.pair(nid, syms[k].id); ok {
				h.push(uint64(r)<<32 | uint64(i))
			}
		}
		if p := syms[i].prev; p >= 0 {
			if r, _, ok := m.pair(syms[p].id, nid); ok {
				h.push(uint64(r)<<32 | uint64(p))
			}
		}
	}
}

// byteToken is the SentencePiece byte-fallback piece of b.
func byteToken(b byte) string { return fmt.Sprintf("<0x%02X>", b) }

// unigram is a Unigram model (not yet supported: loading refuses it before
// one is built).
type unigram struct{}

func (u *unigram) encode(dst []uint32, _ string) []uint32 { return dst }

// decoder turns a non-byte-level token back into text bytes.
type decoder struct {
	metaspace    string // the replacement shown for a space ("▁"), "" for none
	byteFallback bool   // <0xXX> tokens are that byte
}

func (d decoder) token(s string) string {
	if d.byteFallback && len(s) == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && s[5] == '>' {
		var b byte
		if _, err := fmt.Sscanf(s[3:5], "%02X", &b); err == nil {
			return string([]byte{b})
		}
	}
	if d.metaspace != "" {
		return strings.ReplaceAll(s, d.metaspace, " ")
	}
	return s
}
