package tokenize

import (
	"container/heap"
	"math"
)

const noRank = math.MaxUint32

// smallPiece is the longest piece merged with the simple scan of tiktoken's
// reference algorithm (O(n^2) in the piece length, but branch-light and on
// the stack); longer pieces use the heap-and-linked-list merge, O(n log n),
// so a megabyte of digits or spaces cannot stall a worker.
const smallPiece = 64

// appendPiece appends the ids of one pre-tokenised piece. The result is
// tiktoken's byte_pair_encode: repeatedly merge the adjacent pair whose
// concatenation has the lowest rank, the leftmost one on ties.
func (t *Tokenizer) appendPiece(dst []uint32, piece string) []uint32 {
	if r, ok := t.ranks.get(piece); ok {
		return append(dst, t.id(r))
	}
	if len(piece) <= smallPiece {
		return t.mergeSmall(dst, piece)
	}
	return t.mergeLarge(dst, piece)
}

func (t *Tokenizer) id(rank uint32) uint32 {
	if t.rankToID != nil {
		return t.rankToID[rank]
	}
	return rank
}

func (t *Tokenizer) pairRank(piece string, a, c int) uint32 {
	if r, ok := t.ranks.get(piece[a:c]); ok {
		return r
	}
	return noRank
}

func (t *Tokenizer) mergeSmall(dst []uint32, piece string) []uint32 {
	// parts[i] is the start of part i and rank[i] the rank of merging part i
	// with part i+1; parts[n] = len(piece).
	var startsBuf [smallPiece + 1]uint8
	var ranksBuf [smallPiece + 1]uint32
	n := len(piece)
	starts := startsBuf[:n+1]
	ranks := ranksBuf[:n+1]
	for i := 0; i <= n; i++ {
		starts[i] = uint8(i)
	}
	for i := 0; i+2 <= n; i++ {
		ranks[i] = t.pairRank(piece, i, i+2)
	}
	ranks[n-1], ranks[n] = noRank, noRank
	m := n + 1 // number of boundaries
	for m > 2 {
		minR, mi := uint32(noRank), -1
		for i := 0; i < m-2; i++ {
			if ranks[i] < minR {
				minR, mi = ranks[i], i
			}
		}
		if mi < 0 {
			break
		}
		// Merge part mi with part mi+1: boundary mi+1 disappears.
		copy(starts[mi+1:m-1], starts[mi+2:m])
		copy(ranks[mi+1:m-1], ranks[mi+2:m])
		m--
		if mi+2 < m {
			ranks[mi] = t.pairRank(piece, int(starts[mi]), int(starts[mi+2]))
		} else {
			ranks[mi] = noRank
		}
		if mi > 0 {
			ranks[mi-1] = t.pairRank(piece, int(starts[mi-1]), int(starts[mi+1]))
		}
	}
	for i := 0; i+1 < m; i++ {
		r, ok := t.ranks.get(piece[starts[i]:starts[i+1]])
		if !ok {
			// Only reachable with a vocabulary that lacks a single byte.
			r = t.byteRank[piece[starts[i]]]
		}
		dst = append(dst, t.id(r))
	}
	return dst
}

type mergeCand struct {
	rank uint32
	pos  int32 // start of the left part
	gen  uint32
}

type candHeap []mergeCand

func (h candHeap) Len() int { return len(h) }
func (h candHeap) Less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}
func (h candHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *candHeap) Push(x any)   { *h = append(*h, x.(mergeCand)) }
func (h *candHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mergeLarge is the same merge with a doubly linked list of parts and a
// min-heap of candidate pairs keyed by (rank, position); stale candidates are
// recognised by a per-part generation counter.
func (t *Tokenizer) mergeLarge(dst []uint32, piece string) []uint32 {
	n := len(piece)
	next := make([]int32, n) // index of the next part start, n at the end
	prev := make([]int32, n)
	gen := make([]uint32, n)
	alive := make([]bool, n)
	h := make(candHeap, 0, n)
	for i := 0; i < n; i++ {
		next[i], prev[i], alive[i] = int32(i+1), int32(i-1), true
	}
	end := func(i int32) int32 { return next[i] } // end of part i
	for i := 0; i+1 < n; i++ {
		if r := t.pairRank(piece, i, i+2); r != noRank {
			h = append(h, mergeCand{rank: r, pos: int32(i)})
		}
	}
	heap.Init(&h)
	for h.Len() > 0 {
		c := heap.Pop(&h).(mergeCand)
		i := c.pos
		if !alive[i] || gen[i] != c.gen || next[i] >= int32(n) {
			continue
		}
		j := next[i]
		// Check that the candidate still describes parts i and j.
		if t.pairRank(piece, int(i), int(end(j))) != c.rank {
			continue
		}
		alive[j] = false
		next[i] = next[j]
		if next[j] < int32(n) {
			prev[next[j]] = i
		}
		gen[i]++
		if next[i] < int32(n) {
			if r := t.pairRank(piece, int(i), int(end(next[i]))); r != noRank {
				heap.Push(&h, mergeCand{rank: r, pos: i, gen: gen[i]})
			}
		}
		if p := prev[i]; p >= 0 {
			gen[p]++
			if r := t.pairRank(piece, int(p), int(next[i])); r != noRank {
				heap.Push(&h, mergeCand{rank: r, pos: p, gen: gen[p]})
			}
		}
	}
	for i := int32(0); i < int32(n); i = next[i] {
		r, ok := t.ranks.get(piece[i:next[i]])
		if !ok {
			r = t.byteRank[piece[i]]
		}
		dst = append(dst, t.id(r))
	}
	return dst
}
