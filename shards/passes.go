package shards

import (
	"fmt"
	"path/filepath"
)

// SourcePasses is how much of one source a run draws.
type SourcePasses struct {
	Name string `json:"name"`
	// Rows is the number of samples (SeqLen+1 tokens each) drawn; Tokens
	// is Rows*SeqLen, the tokens trained on (consecutive samples share one
	// token).
	Rows   int64 `json:"rows"`
	Tokens int64 `json:"tokens"`
	// EpochSamples is the number of samples in the source's first epoch:
	// its data less what is held out, cut into windows whose last fewer
	// than SeqLen tokens go unused (for this rank).
	EpochSamples int64 `json:"epoch_samples"`
	// Passes is how many epochs of the source the rows are: whole epochs
	// plus the fraction of the next.
	Passes float64 `json:"passes"`
}

// Passes returns, per source in mix order, what a loader with l's options
// draws in its first batches batches: rows, and passes over the source's
// samples counted exactly as Next draws them (the held-out data excluded,
// samples overlapping by one token, each window's tail unused, each
// epoch's own windows). It reads every shard of a source that holds data
// out (to find which documents do), one at a time; l's position is not
// changed.
func (l *Loader) Passes(batches int64) ([]SourcePasses, error) {
	if batches < 0 {
		return nil, fmt.Errorf("loader: %d batches", batches)
	}
	// Rows per source: the per-batch plan, run on scratch counters.
	saved := make([]int64, len(l.srcs))
	for i, s := range l.srcs {
		saved[i], s.Rows = s.Rows, 0
	}
	for range batches {
		l.plan()
		for i, s := range l.srcs {
			s.Rows += int64(l.quota[i])
		}
	}
	out := make([]SourcePasses, len(l.srcs))
	for i, s := range l.srcs {
		out[i] = SourcePasses{Name: s.src.Name, Rows: s.Rows, Tokens: s.Rows * int64(l.opt.SeqLen)}
		s.Rows = saved[i]
	}
	for i, s := range l.srcs {
		kept, err := l.keptTokens(s)
		if err != nil {
			return nil, err
		}
		rows := out[i].Rows
		var perm, starts []int
		for epoch := int64(0); ; epoch++ {
			perm, starts = epochWindows(s.src.Manifest.Shards, s.seed, epoch, int64(l.opt.Window)*int64(l.opt.SeqLen), perm, starts)
			var n int64
			for w := 0; w+1 < len(starts); w++ {
				var total int64
				for _, sh := range perm[starts[w]:starts[w+1]] {
					total += kept[sh]
				}
				n += l.rankSamples(total)
			}
			if epoch == 0 {
				out[i].EpochSamples = n
			}
			if n == 0 {
				if rows == 0 {
					break
				}
				return nil, fmt.Errorf("loader: source %q has no samples of %d tokens in an epoch", s.src.Name, l.opt.SeqLen+1)
			}
			if rows <= n {
				out[i].Passes = float64(epoch) + float64(rows)/float64(n)
				break
			}
			rows -= n
		}
	}
	return out, nil
}

// rankSamples is the number of samples this rank draws from a window of
// total tokens.
func (l *Loader) rankSamples(total int64) int64 {
	if total <= int64(l.opt.SeqLen) {
		return 0
	}
	n := (total - 1) / int64(l.opt.SeqLen)
	W, r := int64(l.opt.World), int64(l.opt.Rank)
	if n <= r {
		return 0
	}
	return (n - r + W - 1) / W
}

// keptTokens is, per shard of s, the tokens the loader reads from it: all
// of them without a split, else the sum of the pieces it keeps.
func (l *Loader) keptTokens(s *srcCursor) ([]int64, error) {
	infos := s.src.Manifest.Shards
	out := make([]int64, len(infos))
	if s.split == SplitNone {
		for i, sh := range infos {
			out[i] = sh.Tokens
		}
		return out, nil
	}
	chunk := HeldOutChunk * l.opt.SeqLen
	var pieces []piece
	for i := range infos {
		info := infos[i]
		ts, err := ReadTokenShard(filepath.Join(s.src.Dir, info.Name), &info, l.mix.VocabSize())
		if err != nil {
			return nil, fmt.Errorf("loader: source %q: %w", s.src.Name, err)
		}
		for row := range ts.Rows() {
			if ts.Len(row) == 0 {
				continue
			}
			pieces = appendPieces(pieces[:0], ts, 0, row, s.split, l.opt.ValFraction, l.opt.Val, chunk)
			for _, p := range pieces {
				out[i] += int64(p.len)
			}
		}
	}
	return out, nil
}

// LoaderPlan is Plan counted as a training run's loader draws: for a
// budget of total tokens (BatchSize x SeqLen per batch, rounded up to whole
// batches) it opens the training loader as OpenTraining does (holding out
// opt.ValFraction) and returns each source's tokens drawn and passes (see
// Loader.Passes) as plan rows, with the passes themselves.
func (m *Mix) LoaderPlan(opt LoaderOptions, total int64) ([]PlanRow, []SourcePasses, error) {
	if opt.SeqLen <= 0 || opt.BatchSize <= 0 {
		return nil, nil, fmt.Errorf("plan: seq_len %d and batch_size %d must be positive", opt.SeqLen, opt.BatchSize)
	}
	tl, _, err := OpenTraining(m, opt)
	if err != nil {
		return nil, nil, err
	}
	per := int64(opt.BatchSize) * int64(opt.SeqLen)
	p, err := tl.Passes((total + per - 1) / per)
	if err != nil {
		return nil, nil, err
	}
	rows := make([]PlanRow, len(p))
	for i, s := range m.Sources {
		rows[i] = PlanRow{Name: s.Name, Available: s.Tokens(), Weight: s.Weight, Drawn: p[i].Tokens, Epochs: p[i].Passes}
	}
	return rows, p, nil
}
