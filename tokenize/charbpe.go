package tokenize

import (
	"fmt"
	"strings"
	"sync"
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

	// A word is merged in parts cut before each "▁" that follows another
	// character, except after a character in noCut: no vocabulary entry
	// contains that character followed by "▁", so no merge can join
	// across the cut, and the parts merge exactly as the whole word does.
	// The parts repeat (they are the words of the text), so their ids are
	// cached.
	cut   bool
	noCut map[rune]bool
	cache wordCache
}

const metaspace = "▁"

// setCuts enables cutting words before "▁" when the vocabulary uses it.
func (m *charBPE) setCuts() {
	m.noCut = map[rune]bool{}
	uses := false
	for k := range m.vocab {
		if strings.HasPrefix(k, metaspace) {
			uses = true
		}
		for i := 1; i < len(k); {
			j := strings.Index(k[i:], metaspace)
			if j < 0 {
				break
			}
			r, _ := utf8.DecodeLastRuneInString(k[:i+j])
			if string(r) != metaspace {
				m.noCut[r] = true
			}
			i += j + len(metaspace)
		}
	}
	m.cut = uses
}

// wordCache holds the ids of short word parts, in shards so that
// concurrent encoders rarely wait on one another. It stops taking entries
// when full, as the tokenizers library's BPE cache does.
type wordCache struct {
	shards [64]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[string][]uint32
}

const (
	cacheWordMax  = 64   // bytes
	cacheShardMax = 4096 // entries per shard: 262,144 in all, at most about 16 MB
)

func cacheHash(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

func (c *wordCache) get(s string) ([]uint32, bool) {
	sh := &c.shards[cacheHash(s)%64]
	sh.mu.RLock()
	v, ok := sh.m[s]
	sh.mu.RUnlock()
	return v, ok
}

func (c *wordCache) put(s string, ids []uint32) {
	sh := &c.shards[cacheHash(s)%64]
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = make(map[string][]uint32)
	}
	if len(sh.m) < cacheShardMax {
		sh.m[strings.Clone(s)] = append([]uint32(nil), ids...)
	}
	sh.mu.Unlock()
}

func (m *charBPE) encodeWord(dst []uint32, w string) []uint32 {
	if m.ignoreMerges {
		if id, ok := m.vocab[w]; ok {
			return append(dst, id)
		}
	}
	if !m.cut {
		return m.mergeWord(dst, w)
	}
	start := 0
	prev := rune(-1)
	for i := 0; i < len(w); {
		r, n := utf8.DecodeRuneInString(w[i:])
		if r == '▁' && i > start && prev != '▁' && !m.noCut[prev] && m.cutAfter(w[:i]) {
			dst = m.part(dst, w[start:i])
			start = i
		}
		prev = r
		i += n
	}
	return m.part(dst, w[start:])
}

// cutAfter reports whether the last character of s, which no vocabulary
// entry joins to "▁", is itself in the vocabulary: one that is not becomes
// <0xXX> tokens, which a vocabulary with ">▁" in an entry could join.
func (m *charBPE) cutAfter(s string) bool {
	if !m.noCut['>'] {
		return true
	}
	_, n := utf8.DecodeLastRuneInString(s)
	_, ok := m.vocab[s[len(s)-n:]]
	return ok
}

// part merges one part of a word, through the cache when it is short.
func (m *charBPE) part(dst []uint32, p string) []uint32 {
	if len(p) > cacheWordMax {
		return m.mergeWord(dst, p)
	}
	if ids, ok := m.cache.get(p); ok {
		return append(dst, ids...)
	}
	n := len(dst)
	dst = m.mergeWord(dst, p)
	m.cache.put(p, dst[n:])
	return dst
}

// sym is one symbol of a word being merged.
type sym struct {
	id         uint32
	prev, next int32
}

// mergeWord merges a word (or a part of one) from its characters.
func (m *charBPE) mergeWord(dst []uint32, w string) []uint32 {
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
