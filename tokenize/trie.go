package tokenize

import "sort"

// byteTrie maps byte strings to int32 values for common-prefix search: the
// Unigram models walk it once per byte from each start position, where a
// map of every prefix costs a hash of the whole prefix per step (the
// SentencePiece Unigram path was 2.6x the library with the map; the
// library and Hugging Face walk a trie too).
//
// Nodes are stored in CSR form: node i's children are labels[first[i] :
// first[i]+count[i]] (sorted) with the child nodes beside them; the root's
// children are a dense table.
type byteTrie struct {
	root   [256]int32 // child of the root per byte, or -1
	first  []int32
	count  []uint16
	value  []int32 // the key's value, or -1 where no key ends
	labels []byte
	child  []int32
}

// newByteTrie builds the trie of keys (each with its value; a key given
// twice keeps the last value).
func newByteTrie(keys []string, values []int32) *byteTrie {
	// Insert into a map-based trie, then lay it out.
	type edge struct {
		label byte
		to    int32
	}
	kids := [][]edge{nil}
	vals := []int32{-1}
	next := map[uint64]int32{}
	for k, key := range keys {
		n := int32(0)
		for i := 0; i < len(key); i++ {
			e := uint64(n)<<8 | uint64(key[i])
			c, ok := next[e]
			if !ok {
				c = int32(len(vals))
				vals = append(vals, -1)
				kids = append(kids, nil)
				kids[n] = append(kids[n], edge{key[i], c})
				next[e] = c
			}
			n = c
		}
		vals[n] = values[k]
	}
	t := &byteTrie{first: make([]int32, len(vals)), count: make([]uint16, len(vals)), value: vals}
	for i := range t.root {
		t.root[i] = -1
	}
	for n, es := range kids {
		sort.Slice(es, func(i, j int) bool { return es[i].label < es[j].label })
		t.first[n] = int32(len(t.labels))
		t.count[n] = uint16(len(es))
		for _, e := range es {
			t.labels = append(t.labels, e.label)
			t.child = append(t.child, e.to)
			if n == 0 {
				t.root[e.label] = e.to
			}
		}
	}
	return t
}

// step returns the child of node n on byte c, or -1.
func (t *byteTrie) step(n int32, c byte) int32 {
	if n == 0 {
		return t.root[c]
	}
	lo, hi := int(t.first[n]), int(t.first[n])+int(t.count[n])
	for hi-lo > 8 {
		mid := (lo + hi) / 2
		if t.labels[mid] < c {
			lo = mid + 1
		} else {
			hi = mid + 1 // labels[mid] may be c
		}
	}
	for i := lo; i < hi; i++ {
		if t.labels[i] == c {
			return t.child[i]
		}
		if t.labels[i] > c {
			break
		}
	}
	return -1
}
