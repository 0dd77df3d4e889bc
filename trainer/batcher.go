package trainer

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
)

// Batcher supplies training batches: Next fills dst with B*(T+1) tokens,
// B packed sequences of T+1 tokens each (inputs are a sequence's first T,
// targets its last T). State and Restore save and resume the position so
// that the batches after Restore are exactly those that followed State.
// shards.Loader satisfies it.
type Batcher interface {
	Next(dst []uint32) error
	State() ([]byte, error)
	Restore(state []byte) error
}

// SyntheticBatcher draws sequences from a fixed random first-order Markov
// chain over Vocab tokens in which each token has Branch likely successors:
// learnable structure (the loss can fall from ln(Vocab) towards ln(Branch))
// for tests and benchmarks without data. Sequence k depends only on Seed
// and k, so the state is one counter.
type SyntheticBatcher struct {
	Vocab, Branch int
	Seed          uint64
	next          uint64
	table         []uint32 // Vocab*Branch successors
}

// NewSyntheticBatcher returns a SyntheticBatcher at sequence 0.
func NewSyntheticBatcher(vocab, branch int, seed uint64) *SyntheticBatcher {
	branch = max(1, min(branch, vocab))
	r := rand.New(rand.NewPCG(seed, 1))
	t := make([]uint32, vocab*branch)
	for i := range t {
		t[i] = uint32(r.IntN(vocab))
	}
	return &SyntheticBatcher{Vocab: vocab, Branch: branch, Seed: seed, table: t}
}

// Next implements Batcher: it fills all of dst from one walk of the chain,
// so consecutive packed sequences continue each other.
func (s *SyntheticBatcher) Next(dst []uint32) error {
	r := rand.New(rand.NewPCG(s.Seed, s.next+2))
	s.next++
	tok := uint32(r.IntN(s.Vocab))
	for i := range dst {
		dst[i] = tok
		tok = s.table[int(tok)*s.Branch+r.IntN(s.Branch)]
	}
	return nil
}

// State implements Batcher.
func (s *SyntheticBatcher) State() ([]byte, error) {
	return binary.LittleEndian.AppendUint64(nil, s.next), nil
}

// Restore implements Batcher.
func (s *SyntheticBatcher) Restore(b []byte) error {
	if len(b) != 8 {
		return fmt.Errorf("trainer: synthetic batcher state has %d bytes, want 8", len(b))
	}
	s.next = binary.LittleEndian.Uint64(b)
	return nil
}

// SliceBatcher serves consecutive windows of a token stream, wrapping at the
// end: each sequence starts where the previous one's last input token was,
// as in nanoGPT's simple loaders. The state is the offset.
type SliceBatcher struct {
	Tokens []uint32
	SeqLen int
	off    int
}

// Next implements Batcher.
func (s *SliceBatcher) Next(dst []uint32) error {
	T1 := s.SeqLen + 1
	if len(dst)%T1 != 0 || len(s.Tokens) < T1 {
		return fmt.Errorf("trainer: slice batcher: dst %d not a multiple of %d or only %d tokens", len(dst), T1, len(s.Tokens))
	}
	for b := 0; b < len(dst); b += T1 {
		if s.off+T1 > len(s.Tokens) {
			s.off = 0
		}
		copy(dst[b:b+T1], s.Tokens[s.off:s.off+T1])
		s.off += s.SeqLen
	}
	return nil
}

// State implements Batcher.
func (s *SliceBatcher) State() ([]byte, error) {
	return binary.LittleEndian.AppendUint64(nil, uint64(s.off)), nil
}

// Restore implements Batcher.
func (s *SliceBatcher) Restore(b []byte) error {
	if len(b) != 8 {
		return fmt.Errorf("trainer: slice batcher state has %d bytes, want 8", len(b))
	}
	off := binary.LittleEndian.Uint64(b)
	if off > uint64(len(s.Tokens)) {
		return fmt.Errorf("trainer: slice batcher offset %d beyond %d tokens", off, len(s.Tokens))
	}
	s.off = int(off)
	return nil
}
