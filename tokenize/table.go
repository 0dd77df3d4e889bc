package tokenize

import "math/bits"

// rankTable maps token bytes to ranks. Keys of at most 8 bytes (almost
// every lookup: whole words and the pairs inside them) live in the slot
// itself, packed into a uint64, so a hit costs one cache line and no pointer
// chase; longer keys sit in a second open-addressing table whose slots hold a
// hash tag and the rank, the bytes staying once in an arena indexed by rank.
// Hand-written rather than a Go map[string]uint32 because it is faster:
// BenchmarkRankLookup (r50k, every pre-token of the English web text in
// ../shared/data/jsonl, the two alternated in one loop, thread CPU time)
// measured 1.15-1.44x the map's speed over four runs of 400 passes on this
// shared 2-core machine (10-17 ns against 15-21 ns per lookup).
type rankTable struct {
	short     []shortSlot
	shortMask uint64
	long      []uint64 // hash tag << 32 | rank+1; 0 = empty
	longMask  uint64
	arena     string   // token bytes, concatenated in rank order
	offs      []uint32 // offs[r], offs[r+1] bound rank r's bytes
	present   []bool   // whether rank r is a token
}

type shortSlot struct {
	key  uint64 // the key's bytes, little-endian, zero-padded
	meta uint64 // len << 32 | rank+1; 0 = empty
}

const (
	hk1 = 0x9E3779B97F4A7C15
	hk2 = 0xC2B2AE3D27D4EB4F
)

// packShort packs a string of 1..8 bytes into a uint64 (little-endian,
// zero-padded); the length disambiguates trailing zero bytes.
func packShort(s string) uint64 {
	n := len(s)
	switch {
	case n == 8:
		return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	case n >= 4:
		lo := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24
		t := s[n-4:]
		hi := uint64(t[0]) | uint64(t[1])<<8 | uint64(t[2])<<16 | uint64(t[3])<<24
		return lo | hi<<(uint(n-4)*8)
	case n > 0:
		return uint64(s[0]) | uint64(s[n>>1])<<(uint(n>>1)*8) | uint64(s[n-1])<<(uint(n-1)*8)
	}
	return 0
}

func hashShort(k uint64, n int) uint64 {
	hi, lo := bits.Mul64(k^hk1, hk2^uint64(n))
	return hi ^ lo
}

func hashLong(s string) uint64 {
	n := len(s)
	h := uint64(n) * hk1
	i := 0
	for ; i+8 <= n; i += 8 {
		hi, lo := bits.Mul64(h^packShort(s[i:i+8]), hk2)
		h = hi ^ lo
	}
	if i < n {
		hi, lo := bits.Mul64(h^packShort(s[n-8:]), hk1)
		h = hi ^ lo
	}
	return h
}

// newRankTable builds the table from tokens indexed by rank ("" = absent).
func newRankTable(tokens []string) rankTable {
	var t rankTable
	size, nShort, nLong := 0, 0, 0
	for _, s := range tokens {
		size += len(s)
		switch {
		case s == "":
		case len(s) <= 8:
			nShort++
		default:
			nLong++
		}
	}
	buf := make([]byte, 0, size)
	t.offs = make([]uint32, len(tokens)+1)
	t.present = make([]bool, len(tokens))
	for r, s := range tokens {
		t.offs[r] = uint32(len(buf))
		buf = append(buf, s...)
		t.present[r] = s != ""
	}
	t.offs[len(tokens)] = uint32(len(buf))
	t.arena = string(buf)
	pow2 := func(n int) int {
		c := 16
		for c < 2*n {
			c <<= 1
		}
		return c
	}
	t.short = make([]shortSlot, pow2(nShort))
	t.shortMask = uint64(len(t.short) - 1)
	t.long = make([]uint64, pow2(nLong))
	t.longMask = uint64(len(t.long) - 1)
	for r, s := range tokens {
		switch {
		case s == "":
		case len(s) <= 8:
			k := packShort(s)
			for i := hashShort(k, len(s)) & t.shortMask; ; i = (i + 1) & t.shortMask {
				if t.short[i].meta == 0 {
					t.short[i] = shortSlot{key: k, meta: uint64(len(s))<<32 | uint64(r+1)}
					break
				}
			}
		default:
			h := hashLong(s)
			for i := h & t.longMask; ; i = (i + 1) & t.longMask {
				if t.long[i] == 0 {
					t.long[i] = (h>>32)<<32 | uint64(r+1)
					break
				}
			}
		}
	}
	return t
}

// get returns the rank of the token with bytes s.
func (t *rankTable) get(s string) (uint32, bool) {
	n := len(s)
	if n <= 8 {
		if n == 0 {
			return 0, false
		}
		k := packShort(s)
		want := uint64(n) << 32
		for i := hashShort(k, n) & t.shortMask; ; i = (i + 1) & t.shortMask {
			e := &t.short[i]
			if e.meta == 0 {
				return 0, false
			}
			if e.key == k && e.meta&^0xFFFFFFFF == want {
				return uint32(e.meta) - 1, true
			}
		}
	}
	h := hashLong(s)
	tag := h >> 32
	for i := h & t.longMask; ; i = (i + 1) & t.longMask {
		e := t.long[i]
		if e == 0 {
			return 0, false
		}
		if e>>32 == tag {
			r := uint32(e) - 1
			if t.arena[t.offs[r]:t.offs[r+1]] == s {
				return r, true
			}
		}
	}
}

// bytesOf returns rank r's bytes.
func (t *rankTable) bytesOf(r uint32) (string, bool) {
	if int(r) >= len(t.present) || !t.present[r] {
		return "", false
	}
	return t.arena[t.offs[r]:t.offs[r+1]], true
}
