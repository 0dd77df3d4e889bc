package shards

import "fmt"

// MaxVocabSize bounds a token manifest's vocabulary (2^24 = 16,777,216
// ids; the largest public tokenizers have about 256k). Readers size tables
// by the vocabulary (a Parquet dictionary, a model's embedding), so a
// crafted or hand-edited vocab_size of 2^31-1 is refused when the manifest
// is read, before anything is allocated for it.
const MaxVocabSize = 1 << 24

// checkBounds refuses counts no smelt run writes: a vocabulary outside
// 1..MaxVocabSize, an end-of-text id outside it, negative counts, and
// token totals that are not the sum of the shards'.
func (m *Manifest) checkBounds(path string) error {
	if t := m.Tokenizer; t != nil {
		if t.VocabSize < 1 || t.VocabSize > MaxVocabSize {
			return fmt.Errorf("%s: tokenizer vocab_size %d: want 1..%d", path, t.VocabSize, MaxVocabSize)
		}
		if int64(t.EOT) >= int64(t.VocabSize) {
			return fmt.Errorf("%s: end-of-text id %d is outside the vocabulary of %d", path, t.EOT, t.VocabSize)
		}
	}
	var tokens int64
	for _, s := range m.Shards {
		if s.Rows < 0 || s.Bytes < 0 || s.DataBytes < 0 || s.Tokens < 0 {
			return fmt.Errorf("%s: shard %s: negative count", path, s.Name)
		}
		tokens += s.Tokens
	}
	if m.Totals.Tokens != tokens {
		return fmt.Errorf("%s: totals say %d tokens, its shards %d (edited by hand?)", path, m.Totals.Tokens, tokens)
	}
	return nil
}
