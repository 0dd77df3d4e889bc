package filter

import "math/bits"

// countTable is an open-addressing hash table from non-zero uint64 keys to
// counts, reused from document to document.
//
// The rules and the classifier first used Go maps and a 2^20-entry count
// array. Measured on the ../shared/data crawl + reference mix (1 MB, AMD
// EPYC, one core): Gopher repetition ran at 6.5 MB/s with maps, because
// clear() on a map that once held a 66 kB document's n-grams costs its full
// capacity for every later small document; the classifier ran at 33 MB/s
// with the big array (a cache miss per word). A table sized to the current
// document, cleared only over the part in use, brought repetition to about
// 70 MB/s and scoring to about 100 MB/s of CPU time (BenchmarkGopherRepetition,
// BenchmarkClassifierScore).
type countTable struct {
	keys  []uint64
	vals  []uint32
	shift uint
	n     int
}

// reset empties the table, sized for about expect keys.
func (t *countTable) reset(expect int) {
	size := 16
	if expect > 4 {
		size = 1 << bits.Len(uint(expect*2-1))
	}
	if cap(t.keys) >= size {
		t.keys, t.vals = t.keys[:size], t.vals[:size]
		clear(t.keys)
	} else {
		t.keys, t.vals = make([]uint64, size), make([]uint32, size)
	}
	t.shift = uint(64 - bits.TrailingZeros(uint(size)))
	t.n = 0
}

func (t *countTable) slot(k uint64) int {
	return int((k * 0x9e3779b97f4a7c15) >> t.shift)
}

// inc adds one to k's count and returns the new count. Key 0 is stored as 1.
func (t *countTable) inc(k uint64) uint32 {
	if k == 0 {
		k = 1
	}
	mask := len(t.keys) - 1
	for i := t.slot(k); ; i = (i + 1) & mask {
		switch t.keys[i] {
		case k:
			t.vals[i]++
			return t.vals[i]
		case 0:
			if 2*(t.n+1) > len(t.keys) {
				t.grow()
				return t.inc(k)
			}
			t.keys[i], t.vals[i] = k, 1
			t.n++
			return 1
		}
	}
}

func (t *countTable) grow() {
	keys, vals := t.keys, t.vals
	t.keys, t.vals = make([]uint64, 2*len(keys)), make([]uint32, 2*len(keys))
	t.shift--
	mask := len(t.keys) - 1
	for j, k := range keys {
		if k == 0 {
			continue
		}
		i := t.slot(k)
		for t.keys[i] != 0 {
			i = (i + 1) & mask
		}
		t.keys[i], t.vals[i] = k, vals[j]
	}
}
