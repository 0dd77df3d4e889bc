package dedup

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/zeebo/xxh3"
)

// Hasher computes 64-bit MinHash signatures over word n-grams.
//
// Each shingle (n consecutive words of the normalised text) is hashed to 64
// bits (xxh3 of each word, the n word hashes mixed), and permutation i maps
// the shingle hash x to a[i]*x + b[i] (mod 2^64, a[i] odd, so a bijection);
// the signature keeps the minimum of each permutation over all shingles.
// A signature is a []uint64 of Perms values, the form the ekzhu/minhash-lsh
// index takes in Add and Query.
//
// Why not ekzhu's own Minhash type: it hashes every shingle twice with FNV
// through hash.Hash interfaces and derives each permutation from those with a
// multiply and add. Measured on this machine (BenchmarkSignature, English
// news text, 112 permutations, 5-grams) it runs at about 11 MB/s, this code
// at over 100 MB/s per core; see BenchmarkSignature/ekzhu vs /smelt for the
// ratio in the same run. One multiply-add-min per permutation in a flat loop
// is the whole inner cost.
//
// A Hasher is safe for concurrent use.
type Hasher struct {
	ngram int
	a, b  []uint64
	pool  sync.Pool
}

type scratch struct {
	word []byte
	ring []uint64
}

// NewHasher returns a hasher with perms permutations over ngram-word
// shingles, its permutations drawn from seed (the same seed gives the same
// signatures in every run and on every machine).
func NewHasher(perms, ngram int, seed uint64) (*Hasher, error) {
	if perms < 1 || perms > 1024 {
		return nil, fmt.Errorf("dedup: %d permutations: want 1..1024", perms)
	}
	if ngram < 1 || ngram > 64 {
		return nil, fmt.Errorf("dedup: n-gram size %d: want 1..64", ngram)
	}
	h := &Hasher{ngram: ngram, a: make([]uint64, perms), b: make([]uint64, perms)}
	s := seed
	for i := range h.a {
		h.a[i] = splitmix64(&s) | 1
		h.b[i] = splitmix64(&s)
	}
	h.pool.New = func() any { return &scratch{ring: make([]uint64, ngram)} }
	return h, nil
}

// Perms is the signature length.
func (h *Hasher) Perms() int { return len(h.a) }

// NGram is the shingle size in words.
func (h *Hasher) NGram() int { return h.ngram }

func splitmix64(s *uint64) uint64 {
	*s += 0x9e3779b97f4a7c15
	z := *s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}

// Signature returns the MinHash signature of text, or nil when the text has
// no words.
func (h *Hasher) Signature(text string) []uint64 {
	sig := make([]uint64, len(h.a))
	if !h.SignatureInto(sig, text) {
		return nil
	}
	return sig
}

// SignatureInto writes the signature of text into sig (len Perms) and
// reports whether the text had any words; without words sig is left all
// math.MaxUint64.
func (h *Hasher) SignatureInto(sig []uint64, text string) bool {
	if len(sig) != len(h.a) {
		panic("dedup: signature buffer of wrong length")
	}
	for i := range sig {
		sig[i] = math.MaxUint64
	}
	sc := h.pool.Get().(*scratch)
	defer h.pool.Put(sc)
	n := h.ngram
	ring := sc.ring
	words := 0
	sc.word = forEachWord(sc.word, text, func(w []byte) {
		ring[words%n] = xxh3.Hash(w)
		words++
		if words >= n {
			h.push(sig, shingleHash(ring, words%n))
		}
	})
	if words == 0 {
		return false
	}
	if words < n {
		// Shorter than one shingle: the whole text is the one shingle.
		h.push(sig, shingleHash(ring[:words], 0))
	}
	return true
}

// shingleHash mixes the word hashes of ring, oldest first from start.
func shingleHash(ring []uint64, start int) uint64 {
	x := uint64(len(ring))
	for k := range ring {
		i := start + k
		if i >= len(ring) {
			i -= len(ring)
		}
		x = (x ^ ring[i]) * 0x9e3779b97f4a7c15
		x ^= x >> 29
	}
	return fmix64(x)
}

// push folds one shingle hash into the signature: one multiply-add and one
// min per permutation, a flat loop without bounds checks.
func (h *Hasher) push(sig []uint64, x uint64) {
	a := h.a[:len(sig)]
	b := h.b[:len(sig)]
	for i := range sig {
		sig[i] = min(sig[i], a[i]*x+b[i])
	}
}

// Jaccard estimates the Jaccard similarity of the shingle sets behind two
// signatures: the fraction of permutations whose minimum agrees.
func Jaccard(a, b []uint64) float64 {
	if len(a) == 0 || len(a) != len(b) {
		return 0
	}
	b = b[:len(a)]
	eq := 0
	for i := range a {
		if a[i] == b[i] {
			eq++
		}
	}
	return float64(eq) / float64(len(a))
}

// BandHashes appends one 64-bit key per LSH band to dst: band j hashes
// signature values [j*rows, (j+1)*rows) with xxh3, mixed with salt (the
// source's hash when dedup is scoped to sources, else 0). Two documents are
// LSH candidates when any band key agrees.
func BandHashes(dst []uint64, sig []uint64, bands, rows int, salt uint64) []uint64 {
	var buf [8 * 64]byte
	for j := 0; j < bands; j++ {
		band := sig[j*rows : (j+1)*rows]
		var k uint64
		if len(band) <= 64 {
			for i, v := range band {
				binary.LittleEndian.PutUint64(buf[8*i:], v)
			}
			k = xxh3.HashSeed(buf[:8*len(band)], uint64(j))
		} else {
			b := make([]byte, 8*len(band))
			for i, v := range band {
				binary.LittleEndian.PutUint64(b[8*i:], v)
			}
			k = xxh3.HashSeed(b, uint64(j))
		}
		dst = append(dst, k^salt)
	}
	return dst
}

// BandsRows picks an LSH banding for a similarity threshold: the largest
// rows per band (fewest candidates to verify) whose bands = perms/rows still
// make a pair at exactly the threshold a candidate with probability at least
// 0.9, 1-(1-t^rows)^bands >= 0.9. For 112 permutations and t = 0.8 it gives
// 14 bands of 8 rows.
func BandsRows(perms int, threshold float64) (bands, rows int) {
	bands, rows = perms, 1
	for r := 1; r <= perms; r++ {
		b := perms / r
		if 1-math.Pow(1-math.Pow(threshold, float64(r)), float64(b)) >= 0.9 {
			bands, rows = b, r
		}
	}
	return bands, rows
}

// CandidateProbability is the chance that a pair of Jaccard similarity j
// shares at least one of bands bands of rows rows.
func CandidateProbability(j float64, bands, rows int) float64 {
	return 1 - math.Pow(1-math.Pow(j, float64(rows)), float64(bands))
}
