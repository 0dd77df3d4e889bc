package filter

import (
	"math"
	"slices"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Classifier features: HashingTF-style hashed word unigrams and bigrams.
//
// Text is lowercased and split into words, a word being a maximal run of
// letters, digits and combining marks (punctuation and symbols separate
// words and are dropped). Each word is hashed with 64-bit FNV-1a over its
// lowercased UTF-8 bytes; a unigram's bucket and a bigram's bucket (from
// the two word hashes) are the top Bits bits of a splitmix64 mix, so
// unigrams and bigrams share one table of 2^Bits buckets as in Spark's
// HashingTF. A document's vector holds 1+ln(count) per bucket, scaled to
// unit L2 norm, so long and short documents score on one scale.
//
// The hash is part of the model file's format (version 1): changing it
// means a new version.

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
	uniSalt   = 0x9e3779b97f4a7c15
	biSalt    = 0xc2b2ae3d27d4eb4f
)

func uniBucket(h uint64, shift uint) uint32 { return uint32(mix64(h^uniSalt) >> shift) }

func biBucket(prev, h uint64, shift uint) uint32 {
	return uint32(mix64(mix64(prev^biSalt)+h) >> shift)
}

// hashWords calls f with the FNV-1a hash of every lowercased word of text.
func hashWords(text string, f func(h uint64)) {
	h, in := uint64(fnvOffset), false
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			default:
				if in {
					f(h)
					h, in = fnvOffset, false
				}
				continue
			}
			h = (h ^ uint64(c)) * fnvPrime
			in = true
			continue
		}
		r, n := utf8.DecodeRuneInString(text[i:])
		i += n
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)) {
			if in {
				f(h)
				h, in = fnvOffset, false
			}
			continue
		}
		r = unicode.ToLower(r)
		var buf [utf8.UTFMax]byte
		for _, b := range buf[:utf8.EncodeRune(buf[:], r)] {
			h = (h ^ uint64(b)) * fnvPrime
		}
		in = true
	}
	if in {
		f(h)
	}
}

// sublinear[c] = 1 + ln(c) for small counts.
var sublinear = func() (t [256]float64) {
	for c := 1; c < len(t); c++ {
		t[c] = 1 + math.Log(float64(c))
	}
	return t
}()

func tf(c uint32) float64 {
	if c < uint32(len(sublinear)) {
		return sublinear[c]
	}
	return 1 + math.Log(float64(c))
}

// hasher holds one goroutine's scratch for feature extraction: a count per
// bucket and the buckets touched by the current document.
type hasher struct {
	bits    uint
	counts  []uint32
	touched []uint32
}

func newHasher(bits uint) *hasher {
	return &hasher{bits: bits, counts: make([]uint32, 1<<bits)}
}

// count fills h.counts and h.touched (in first-touch order) for text.
func (h *hasher) count(text string, bigrams bool) {
	for _, b := range h.touched {
		h.counts[b] = 0
	}
	h.touched = h.touched[:0]
	shift := 64 - h.bits
	var prev uint64
	first := true
	add := func(b uint32) {
		if h.counts[b] == 0 {
			h.touched = append(h.touched, b)
		}
		h.counts[b]++
	}
	hashWords(text, func(w uint64) {
		add(uniBucket(w, shift))
		if bigrams && !first {
			add(biBucket(prev, w, shift))
		}
		prev, first = w, false
	})
}

// Vector is a sparse feature vector: sorted bucket indices and values.
type Vector struct {
	Index []uint32
	Value []float32
}

// vector returns the normalised sparse vector of the last counted text.
func (h *hasher) vector() Vector {
	idx := slices.Clone(h.touched)
	slices.Sort(idx)
	val := make([]float32, len(idx))
	var ss float64
	for _, b := range idx {
		v := tf(h.counts[b])
		ss += v * v
	}
	if ss == 0 {
		return Vector{}
	}
	inv := 1 / math.Sqrt(ss)
	for i, b := range idx {
		val[i] = float32(tf(h.counts[b]) * inv)
	}
	return Vector{Index: idx, Value: val}
}

// hasherPools keeps scratch hashers per bucket width.
var hasherPools sync.Map // uint -> *sync.Pool

func getHasher(bits uint) *hasher {
	p, _ := hasherPools.LoadOrStore(bits, &sync.Pool{New: func() any { return newHasher(bits) }})
	return p.(*sync.Pool).Get().(*hasher)
}

func putHasher(h *hasher) {
	p, _ := hasherPools.Load(h.bits)
	p.(*sync.Pool).Put(h)
}

// Featurize returns text's feature vector with 2^bits buckets.
func Featurize(text string, bits uint, bigrams bool) Vector {
	h := getHasher(bits)
	defer putHasher(h)
	h.count(text, bigrams)
	return h.vector()
}
