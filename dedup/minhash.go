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
// through hash.Hash closures and then runs the same per-permutation loop.
// Measured on this machine (2-core AMD EPYC VM shared with other jobs, CPU
// time, 112 permutations, word 5-grams of the McCormick news articles):
// ekzhu 22 MB/s; this code 95 MB/s with the scalar loop and 250 MB/s with
// the AVX-512 kernel (push_amd64.s). BenchmarkSignature/ratio reports the
// two side by side in one run (12x in wall time under load). Words of up to
// 8 bytes are packed instead of hashed and shingle hashes roll, so the
// per-word cost outside the permutation loop is about 20 ns.
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
	xs   []uint64 // the document's shingle hashes
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
	xs := h.shingles(sc, text)
	sc.xs = xs
	if len(xs) == 0 {
		return false
	}
	h.pushAll(sig, xs)
	return true
}

// asciiWord maps an ASCII byte to itself lower-cased when it belongs to a
// word (letters and digits), else to 0. 256 entries: indexing by a byte
// needs no bounds check.
var asciiWord = func() (t [256]byte) {
	for c := byte('0'); c <= '9'; c++ {
		t[c] = c
	}
	for c := byte('a'); c <= 'z'; c++ {
		t[c] = c
		t[c-'a'+'A'] = c
	}
	return t
}()

// hashWord hashes one normalised word. Words of up to 8 bytes (most
// English words) are packed into a uint64 and mixed (a bijection, so no
// collisions among them), longer ones go through xxh3: measured, the
// packing takes shingling from 220 to over 300 MB/s on English news, where
// xxh3's length dispatch dominated.
func hashWord(b []byte) uint64 {
	if len(b) > 8 {
		return xxh3.Hash(b)
	}
	var w uint64
	for _, c := range b {
		w = w<<8 | uint64(c)
	}
	return packedWord(w, len(b))
}

func packedWord(w uint64, n int) uint64 {
	return fmix64(w ^ uint64(n)<<59 ^ 0x5bd1e9955bd1e995)
}

// Shingle hashes are a rolling polynomial over the word hashes (mod 2^64),
// H = w[0]*P^(n-1) + ... + w[n-1], finished with fmix64: two multiplies per
// word whatever n.
const shingleP = 0x9e3779b97f4a7c15

// shingles returns the hashes of the text's word n-grams in sc.xs's
// storage; a text with fewer than n words is one shingle.
func (h *Hasher) shingles(sc *scratch, text string) []uint64 {
	n := h.ngram
	ring := sc.ring // word hashes of the current window, a ring
	xs := sc.xs[:0]
	var acc uint64
	pn := uint64(1) // P^n
	for i := 0; i < n; i++ {
		pn *= shingleP
	}
	words, pos := 0, 0
	push := func(w uint64) {
		old := ring[pos]
		ring[pos] = w
		pos++
		if pos == n {
			pos = 0
		}
		acc = acc*shingleP + w
		if words >= n {
			acc -= old * pn
		}
		words++
		if words >= n {
			xs = append(xs, fmix64(acc^uint64(n)))
		}
	}
	if isASCII(text) {
		// The common case, without a copy of the text: words are runs of
		// asciiWord bytes, packed into w as they are scanned.
		start := -1
		var w uint64
		for i := 0; i < len(text); i++ {
			if c := asciiWord[text[i]]; c != 0 {
				if start < 0 {
					start, w = i, 0
				}
				w = w<<8 | uint64(c)
				continue
			}
			if start >= 0 {
				push(h.asciiWordHash(sc, text[start:i], w))
				start = -1
			}
		}
		if start >= 0 {
			push(h.asciiWordHash(sc, text[start:], w))
		}
	} else {
		sc.word = forEachWord(sc.word, text, func(w []byte) { push(hashWord(w)) })
	}
	if words > 0 && words < n {
		// Shorter than one shingle: the whole text is the one shingle.
		xs = append(xs, fmix64(acc^uint64(words)))
	}
	return xs
}

// asciiWordHash is hashWord of the lower-cased ASCII word, given its
// packed bytes w when it is at most 8 bytes long.
func (h *Hasher) asciiWordHash(sc *scratch, word string, w uint64) uint64 {
	if len(word) <= 8 {
		return packedWord(w, len(word))
	}
	buf := sc.word[:0]
	for i := 0; i < len(word); i++ {
		buf = append(buf, asciiWord[word[i]])
	}
	sc.word = buf
	return xxh3.Hash(buf)
}

// pushGeneric folds shingle hashes into the signature: one multiply-add
// and one min per permutation and shingle, in flat loops without bounds
// checks. Shingles go eight at a time: each signature value is loaded once
// per eight shingles, the eight products are independent, and the store is
// a rarely taken branch (a running minimum seldom changes). Measured on this
// machine (CPU time, 200 shingles, 112 permutations): one shingle at a time
// with a conditional store 43.7 ns per shingle, four at a time 34.2 ns,
// eight at a time 30.2 ns. At one 64-bit multiply per cycle this is near
// the scalar limit; pushAll uses AVX-512 where the CPU has it (push_amd64.s).
func pushGeneric(sig, a, b, xs []uint64) {
	a = a[:len(sig)]
	b = b[:len(sig)]
	j := 0
	for ; j+8 <= len(xs); j += 8 {
		x := xs[j : j+8 : j+8]
		for i := range sig {
			ai, bi := a[i], b[i]
			m := min(min(min(ai*x[0]+bi, ai*x[1]+bi), min(ai*x[2]+bi, ai*x[3]+bi)),
				min(min(ai*x[4]+bi, ai*x[5]+bi), min(ai*x[6]+bi, ai*x[7]+bi)))
			if m < sig[i] {
				sig[i] = m
			}
		}
	}
	for ; j < len(xs); j++ {
		x := xs[j]
		for i := range sig {
			if v := a[i]*x + b[i]; v < sig[i] {
				sig[i] = v
			}
		}
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
