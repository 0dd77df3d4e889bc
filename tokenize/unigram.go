package tokenize

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
)

// unigram is a tokenizer.json Unigram model, encoded as the tokenizers
// library's Unigram::encode_optimized does: the Viterbi over every
// vocabulary piece (scores read as the library reads them, sums in
// float64, the first best kept on ties), a character no piece starts with as an unknown piece at the lowest
// score minus 10, runs of unknown pieces fused into one, which becomes its
// <0xXX> byte pieces with byte_fallback, else the unknown id. It is the
// SentencePiece Unigram of spm_encode.go without the library's float32
// storage and user-defined symbols (tokenizers keeps neither).
type unigram struct {
	pieces       []string
	vocab        map[string]uint32 // a piece listed twice keeps its last id
	trie         *byteTrie
	minScore     float64
	scores       []float64
	unk          uint32
	byteFallback bool
	byteIDs      [256]int32 // -1 where <0xXX> is missing
}

// newUnigram reads a Unigram model's vocab ([[piece, score], ...]), unk_id
// and byte_fallback.
func newUnigram(vocabRaw []byte, unkID *int64, byteFallback bool) (*unigram, error) {
	var vocab [][2]json.RawMessage
	if err := json.Unmarshal(vocabRaw, &vocab); err != nil {
		return nil, fmt.Errorf("the Unigram vocab: want [[piece, score], ...]: %w", err)
	}
	if len(vocab) == 0 {
		return nil, errors.New("the Unigram vocab is empty")
	}
	if unkID == nil {
		return nil, errors.New("a Unigram model without unk_id is not supported (text with a character no piece covers could not be encoded)")
	}
	if *unkID < 0 || *unkID >= int64(len(vocab)) {
		return nil, fmt.Errorf("the Unigram unk_id %d is not in the vocabulary of %d pieces", *unkID, len(vocab))
	}
	u := &unigram{pieces: make([]string, len(vocab)), scores: make([]float64, len(vocab)),
		vocab: make(map[string]uint32, len(vocab)), unk: uint32(*unkID), byteFallback: byteFallback, minScore: math.Inf(1)}
	vals := make([]int32, len(vocab))
	for i, pair := range vocab {
		if err := json.Unmarshal(pair[0], &u.pieces[i]); err != nil {
			return nil, fmt.Errorf("the Unigram vocab entry %d: piece: %w", i, err)
		}
		if err := json.Unmarshal(pair[1], &u.scores[i]); err != nil {
			return nil, fmt.Errorf("the Unigram vocab entry %d (%q): score: %w", i, u.pieces[i], err)
		}
		// The score as the tokenizers library reads it (jsonfloat.go).
		f, err := parseJSONFloatLikeSerde(strings.TrimSpace(string(pair[1])))
		if err != nil {
			return nil, fmt.Errorf("the Unigram vocab entry %d (%q): score: %w", i, u.pieces[i], err)
		}
		u.scores[i] = f
		if u.pieces[i] == "" {
			return nil, fmt.Errorf("the Unigram vocab entry %d is an empty piece", i)
		}
		u.vocab[u.pieces[i]] = uint32(i)
		u.minScore = min(u.minScore, u.scores[i])
	}
	for i, p := range u.pieces {
		vals[i] = int32(u.vocab[p])
	}
	u.trie = newByteTrie(u.pieces, vals)
	for c := range u.byteIDs {
		u.byteIDs[c] = -1
		if id, ok := u.vocab[byteToken(byte(c))]; ok {
			u.byteIDs[c] = int32(id)
		}
	}
	return u, nil
}

// encode appends the ids of one pre-tokenized piece.
func (u *unigram) encode(dst []uint32, s string) []uint32 {
	if s == "" {
		return dst
	}
	type node struct {
		id       uint32
		score    float64
		startsAt int32 // -1: no path ends here yet
	}
	var small [64]node
	var best []node
	if len(s) < len(small) {
		best = small[:len(s)+1]
	} else {
		best = make([]node, len(s)+1)
	}
	for i := range best {
		best[i] = node{startsAt: -1}
	}
	best[0].startsAt = 0
	unkScore := u.minScore - 10
	for start := 0; start < len(s); {
		till := best[start].score
		mblen := min(oneCharLen(s[start]), len(s)-start)
		single := false
		for n, end := int32(0), start+1; end <= len(s); end++ {
			if n = u.trie.step(n, s[end-1]); n < 0 {
				break
			}
			id := u.trie.value[n]
			if id < 0 {
				continue
			}
			cand := u.scores[id] + till
			t := &best[end]
			if t.startsAt == -1 || cand > t.score {
				*t = node{id: uint32(id), score: cand, startsAt: int32(start)}
			}
			if end-start == mblen {
				single = true
			}
		}
		if !single {
			t := &best[start+mblen]
			cand := unkScore + till
			if t.startsAt == -1 || cand > t.score {
				*t = node{id: u.unk, score: cand, startsAt: int32(start)}
			}
		}
		start += mblen
	}
	// Backtrack, then emit in order; a run of unknown pieces is one piece.
	mark := len(dst)
	for end := len(s); end > 0; {
		n := best[end]
		start := int(n.startsAt)
		if n.id == u.unk {
			for start > 0 && best[start].id == u.unk {
				start = int(best[start].startsAt)
			}
			dst = u.appendUnknown(dst, s[start:end])
		} else {
			dst = append(dst, n.id)
		}
		end = start
	}
	// Appended last to first (an unknown run's byte pieces too): reverse.
	reverseIDs(dst[mark:])
	return dst
}

// appendUnknown appends the ids of a fused unknown piece, reversed (the
// caller reverses the whole output): its vocabulary id if it is a piece,
// its byte pieces with byte_fallback when all exist, else unk.
func (u *unigram) appendUnknown(dst []uint32, piece string) []uint32 {
	if id, ok := u.vocab[piece]; ok {
		return append(dst, id)
	}
	if u.byteFallback {
		ok := true
		for i := 0; i < len(piece); i++ {
			if u.byteIDs[piece[i]] < 0 {
				ok = false
				break
			}
		}
		if ok {
			for i := len(piece) - 1; i >= 0; i-- {
				dst = append(dst, uint32(u.byteIDs[piece[i]]))
			}
			return dst
		}
	}
	return append(dst, u.unk)
}

func reverseIDs(a []uint32) {
	for i, j := 0, len(a)-1; i < j; i, j = i+1, j-1 {
		a[i], a[j] = a[j], a[i]
	}
}
