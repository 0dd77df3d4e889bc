package tokenize

import "strings"

// encodeBPE is SentencePiece's bpe::Model::Encode: start from characters
// (user-defined symbols whole and frozen), merge the adjacent pair whose
// concatenation is the highest-scoring piece, leftmost on ties, and split
// unused pieces back into the pieces they were merged from.
func (m *spModel) encodeBPE(out []spPiece, s string) []spPiece {
	type symbol struct {
		prev, next int
		freeze     bool
		start, end int // s[start:end]
	}
	syms := make([]symbol, 0, len(s))
	for i := 0; i < len(s); {
		l := m.userPrefix(s[i:])
		freeze := l > 0
		if !freeze {
			l = min(oneCharLen(s[i]), len(s)-i)
		}
		n := len(syms)
		next := n + 1
		if i+l >= len(s) {
			next = -1
		}
		syms = append(syms, symbol{prev: n - 1, next: next, freeze: freeze, start: i, end: i + l})
		i += l
	}
	var revMerge map[string][2]string
	h := &spAgenda{}
	add := func(left, right int) {
		if left < 0 || right < 0 || syms[left].freeze || syms[right].freeze {
			return
		}
		piece := s[syms[left].start:syms[right].end]
		id, ok := m.vocab[piece]
		if !ok {
			return
		}
		h.push(spPair{left: int32(left), right: int32(right), score: m.scores[id], size: int32(len(piece))})
		if m.types[id] == spUnused {
			if revMerge == nil {
				revMerge = map[string][2]string{}
			}
			revMerge[piece] = [2]string{s[syms[left].start:syms[left].end], s[syms[right].start:syms[right].end]}
		}
	}
	for i := 1; i < len(syms); i++ {
		add(i-1, i)
	}
	for len(*h) > 0 {
		top := h.pop()
		l, r := &syms[top.left], &syms[top.right]
		if l.start == l.end || r.start == r.end || (l.end-l.start)+(r.end-r.start) != int(top.size) {
			continue
		}
		l.end = r.end
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = int(top.left)
		}
		r.start, r.end = 0, 0
		add(l.prev, int(top.left))
		add(int(top.left), l.next)
	}
	var reseg func(w string)
	reseg = func(w string) {
		id := m.pieceID(w)
		if m.types[id] != spUnused {
			out = append(out, spPiece{w, id})
			return
		}
		p, ok := revMerge[w]
		if !ok {
			out = append(out, spPiece{w, id})
			return
		}
		reseg(p[0])
		reseg(p[1])
	}
	for i := 0; i >= 0 && len(syms) > 0; i = syms[i].next {
		reseg(s[syms[i].start:syms[i].end])
	}
	return out
}

type spPair struct {
	left, right int32
	score       float32
	size        int32
}

// spAgenda is a max-heap on score, then the smaller left index (the
// library's agenda order), typed to avoid container/heap's boxing.
type spAgenda []spPair

func (a spAgenda) less(i, j int) bool {
	if a[i].score != a[j].score {
		return a[i].score > a[j].score
	}
	return a[i].left < a[j].left
}

func (a *spAgenda) push(x spPair) {
	*a = append(*a, x)
	h := *a
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (a *spAgenda) pop() spPair {
	h := *a
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && h.less(l, m) {
			m = l
		}
		if r < n && h.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*a = h
	return top
}

// encodeBPECut encodes s in parts cut before each "▁" after its first
// byte, when no piece holds "▁" past its start (spm_train's default, which
// splits by whitespace): no merge can then join two parts, and each part's
// merges happen in the same relative order as in the whole text, so the
// pieces are the same. Parts repeat (they are words), so short ones are
// cached as (id, length) pairs.
func (m *spModel) encodeBPECut(out []spPiece, s string) []spPiece {
	var tmp []spPiece
	var buf []uint32
	for i := 0; i < len(s); {
		j := strings.Index(s[i+1:], metaspace)
		if j < 0 {
			j = len(s)
		} else {
			j += i + 1
		}
		part := s[i:j]
		if len(part) > 48 {
			out = m.encodeBPE(out, part)
		} else if c, ok := m.cache.get(part); ok {
			off := 0
			for k := 0; k+1 < len(c); k += 2 {
				out = append(out, spPiece{part[off : off+int(c[k+1])], int32(c[k])})
				off += int(c[k+1])
			}
		} else {
			tmp = m.encodeBPE(tmp[:0], part)
			c := buf[:0]
			for _, p := range tmp {
				c = append(c, uint32(p.id), uint32(len(p.s)))
			}
			m.cache.put(part, c)
			buf = c
			out = append(out, tmp...)
		}
		i = j
	}
	return out
}

// spUnkPenalty is unigram::kUnkPenalty: an unknown character scores the
// lowest piece score minus 10.
const spUnkPenalty = 10.0

// spNode is a Viterbi cell of encodeUnigram: the best path ending here.
type spNode struct {
	id       int32
	score    float32
	startsAt int32
}

// encodeUnigram is SentencePiece's unigram::Model::EncodeOptimized: the
// Viterbi path over piece scores (the first best kept on ties), a character
// no piece starts with as an unknown piece. It appends to out and uses
// sc.best as its table.
func (m *spModel) encodeUnigram(out []spPiece, sc *spScratch, s string) []spPiece {
	type node = spNode
	if cap(sc.best) < len(s)+1 {
		sc.best = make([]node, len(s)+1+len(s)/4)
	}
	best := sc.best[:len(s)+1]
	for i := range best {
		best[i] = node{startsAt: -1}
	}
	unkScore := m.minScore - spUnkPenalty
	for start := 0; start < len(s); {
		till := best[start].score
		mblen := min(oneCharLen(s[start]), len(s)-start)
		single := false
		for n, end := int32(0), start+1; end <= len(s); end++ {
			if n = m.trie.step(n, s[end-1]); n < 0 {
				break
			}
			id := m.trie.value[n]
			if id < 0 || m.types[id] == spUnused {
				continue
			}
			length := end - start
			// The library's `auto score = user ? length*max - 0.1 : score`
			// is a double (the ternary's common type), so the sum and the
			// comparison are in double and only the stored score is a float:
			// that decides ties.
			var score float64
			if m.types[id] == spUserDefined {
				score = float64(float32(length)*m.maxScore) - 0.1
			} else {
				score = float64(m.scores[id])
			}
			cand := score + float64(till)
			t := &best[end]
			if t.startsAt == -1 || cand > float64(t.score) {
				t.score, t.startsAt, t.id = float32(cand), int32(start), id
			}
			if !single && length == mblen {
				single = true
			}
		}
		if !single {
			t := &best[start+mblen]
			cand := unkScore + till
			if t.startsAt == -1 || cand > t.score {
				t.score, t.startsAt, t.id = cand, int32(start), m.unk
			}
		}
		start += mblen
	}
	mark := len(out)
	for end := len(s); end > 0; {
		n := best[end]
		out = append(out, spPiece{s[n.startsAt:end], n.id})
		end = int(n.startsAt)
	}
	for i, j := mark, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
