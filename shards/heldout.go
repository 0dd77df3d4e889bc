package shards

import (
	"errors"
	"fmt"
	"path/filepath"
)

// HeldOut calls fn with every held-out piece of m's sources at
// valFraction, exactly as a validation loader (LoaderOptions.Val) with
// that fraction and seqLen selects them: per source in mix order, its
// shards in manifest order, rows in order, each piece's tokens (a whole
// document with its end-of-text id, or for a source split by samples a run
// of held-out chunks). A source whose split holds nothing out gives
// nothing. It reads one shard at a time; toks is only valid during fn.
// maxTokens > 0 stops a source after the piece that reaches that many
// tokens, so a capped validation set is the same prefix every time.
func (m *Mix) HeldOut(valFraction float64, seqLen int, maxTokens int64, fn func(src *MixSource, id string, toks []uint32) error) error {
	if !(valFraction > 0 && valFraction < 1) {
		return fmt.Errorf("held-out data: val fraction %v must be in (0, 1)", valFraction)
	}
	if seqLen <= 0 {
		return errors.New("held-out data: seq_len must be positive")
	}
	chunk := HeldOutChunk * seqLen
	var buf []uint32
	var pieces []piece
	for _, s := range m.Sources {
		split := splitOf(s, valFraction)
		var n int64
	shards:
		for i := range s.Manifest.Shards {
			info := s.Manifest.Shards[i]
			ts, err := ReadTokenShard(filepath.Join(s.Dir, info.Name), &info, m.VocabSize())
			if err != nil {
				return fmt.Errorf("held-out data: source %q: %w", s.Name, err)
			}
			for row := range ts.Rows() {
				if ts.Len(row) == 0 {
					continue
				}
				pieces = appendPieces(pieces[:0], ts, 0, row, split, valFraction, true, chunk)
				for _, p := range pieces {
					buf = ts.AppendTokens(buf[:0], row, int(p.off), int(p.off+p.len))
					if err := fn(s, ts.ID(row), buf); err != nil {
						return err
					}
					n += int64(p.len)
					if maxTokens > 0 && n >= maxTokens {
						break shards
					}
				}
			}
		}
	}
	return nil
}
