// Package tokenize is smelt's byte-level BPE tokenizer: tiktoken-exact
// encoders for r50k_base (GPT-2), p50k_base, cl100k_base and o200k_base,
// loaders for tiktoken rank files, GPT-2 encoder.json + vocab.bpe and
// Hugging Face tokenizer.json, and a BPE trainer (see Train).
//
// Pre-tokenisation is a hand-written scanner per encoding that reproduces
// the encoding's regular expression exactly (including the `\s+(?!\S)`
// lookahead Go's regexp lacks); tests check it against tiktoken-go on every
// text in the shared data and by fuzzing. A Tokenizer is immutable and safe
// for concurrent use by any number of goroutines.
package tokenize

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// EndOfText is the conventional document separator special token.
const EndOfText = "<|endoftext|>"

// Tokenizer is a byte-level BPE encoder and decoder.
type Tokenizer struct {
	name     string
	pattern  Pattern
	split    splitFunc
	ranks    rankTable
	rankToID []uint32 // nil when ids are ranks (tiktoken, GPT-2)
	idToRank map[uint32]uint32
	byteRank [256]uint32
	specials map[string]uint32 // special token text -> id
	spByID   map[uint32]string
	specList []string // specials, longest first, for matching
	maxID    uint32

	regex  string            // a tiktoken file's own split pattern ("": pattern's)
	pipe   *pipeline         // the tokenizer.json path; nil: the plain byte-level scan
	added  map[uint32]string // non-special added tokens by id
	hash   string            // RanksHash when set (a tokenizer.json's file hash)
	bounds hfBoundaries      // the bos/eos names the tokenizer's files give
	tt     *ttSource         // a tiktoken file loaded with its own pattern or specials (Portable)
	eos    *boundary         // the end-of-text token chosen with WithEOS
	bos    *boundary         // the beginning-of-text token chosen with WithBOS
}

// Spec describes a vocabulary to build a Tokenizer from.
type Spec struct {
	// Name is reported by Tokenizer.Name.
	Name string
	// Pattern is the pre-tokenisation rule.
	Pattern Pattern
	// Tokens holds the token bytes indexed by rank; the empty string marks
	// an unused rank. Merge priority is the rank.
	Tokens []string
	// IDs, when non-nil, gives the output id of each rank (Hugging Face
	// vocabularies, whose ids need not follow merge order); nil means
	// id == rank.
	IDs []uint32
	// Specials maps special token text to id.
	Specials map[string]uint32
}

// New builds a Tokenizer from a Spec. Every single byte must be a token.
func New(spec Spec) (*Tokenizer, error) {
	t := &Tokenizer{
		name:     spec.Name,
		pattern:  spec.Pattern,
		split:    spec.Pattern.split(),
		specials: make(map[string]uint32, len(spec.Specials)),
		spByID:   make(map[uint32]string, len(spec.Specials)),
	}
	if spec.IDs != nil && len(spec.IDs) != len(spec.Tokens) {
		return nil, fmt.Errorf("tokenize: %s: %d ids for %d tokens", spec.Name, len(spec.IDs), len(spec.Tokens))
	}
	seen := make(map[string]int, len(spec.Tokens))
	for r, s := range spec.Tokens {
		if s == "" {
			continue
		}
		if prev, dup := seen[s]; dup {
			return nil, fmt.Errorf("tokenize: %s: token %q has ranks %d and %d", spec.Name, s, prev, r)
		}
		seen[s] = r
	}
	t.ranks = newRankTable(spec.Tokens)
	for b := 0; b < 256; b++ {
		r, ok := t.ranks.get(string([]byte{byte(b)}))
		if !ok {
			return nil, fmt.Errorf("tokenize: %s: byte 0x%02x is not a token; a byte-level BPE vocabulary needs all 256", spec.Name, b)
		}
		t.byteRank[b] = r
	}
	if spec.IDs != nil {
		t.rankToID = append([]uint32(nil), spec.IDs...)
		t.idToRank = make(map[uint32]uint32, len(spec.IDs))
		for r, id := range spec.IDs {
			if spec.Tokens[r] == "" {
				continue
			}
			if _, dup := t.idToRank[id]; dup {
				return nil, fmt.Errorf("tokenize: %s: id %d is used twice", spec.Name, id)
			}
			t.idToRank[id] = uint32(r)
			t.maxID = max(t.maxID, id)
		}
	} else {
		for r := len(spec.Tokens) - 1; r >= 0; r-- {
			if spec.Tokens[r] != "" {
				t.maxID = uint32(r)
				break
			}
		}
	}
	if err := t.setSpecials(spec.Specials); err != nil {
		return nil, err
	}
	return t, nil
}

// setSpecials records the special tokens (and sorts them for matching).
func (t *Tokenizer) setSpecials(specials map[string]uint32) error {
	t.specials = make(map[string]uint32, len(specials))
	t.spByID = make(map[uint32]string, len(specials))
	for s, id := range specials {
		if s == "" {
			return fmt.Errorf("tokenize: %s: empty special token", t.name)
		}
		if _, clash := t.decodeOrdinary(id); clash {
			return fmt.Errorf("tokenize: %s: special token %q id %d is also an ordinary token", t.name, s, id)
		}
		if other, dup := t.spByID[id]; dup {
			return fmt.Errorf("tokenize: %s: special tokens %q and %q share id %d", t.name, s, other, id)
		}
		t.specials[s] = id
		t.spByID[id] = s
		t.specList = append(t.specList, s)
		t.maxID = max(t.maxID, id)
	}
	sort.Slice(t.specList, func(i, j int) bool {
		a, b := t.specList[i], t.specList[j]
		if len(a) != len(b) {
			return len(a) > len(b)
		}
		return a < b
	})
	return nil
}

// Name returns the encoding's name (a built-in name or the file's base name).
func (t *Tokenizer) Name() string { return t.name }

// Pattern returns the pre-tokenisation rule.
func (t *Tokenizer) Pattern() Pattern { return t.pattern }

// PatternRegexp returns the split pattern's regular expression: a tiktoken
// file's own, else Pattern's.
func (t *Tokenizer) PatternRegexp() string {
	if t.regex != "" {
		return t.regex
	}
	return t.pattern.Regexp()
}

// VocabSize returns max id + 1 over ordinary and special tokens.
func (t *Tokenizer) VocabSize() int { return int(t.maxID) + 1 }

// Specials returns the special tokens and their ids.
func (t *Tokenizer) Specials() map[string]uint32 {
	m := make(map[string]uint32, len(t.specials))
	for k, v := range t.specials {
		m[k] = v
	}
	return m
}

// SpecialID returns the id of a special token.
func (t *Tokenizer) SpecialID(s string) (uint32, bool) {
	id, ok := t.specials[s]
	return id, ok
}

// TokenBytes returns the bytes of an ordinary or special token id.
func (t *Tokenizer) TokenBytes(id uint32) ([]byte, bool) {
	if s, ok := t.decodeOrdinary(id); ok {
		return []byte(s), true
	}
	if s, ok := t.spByID[id]; ok {
		return []byte(s), true
	}
	if s, ok := t.added[id]; ok {
		return []byte(s), true
	}
	return nil, false
}

func (t *Tokenizer) decodeOrdinary(id uint32) (string, bool) {
	if t.pipe != nil && t.pipe.spm != nil {
		return t.pipe.spm.decodeToken(id)
	}
	if t.pipe != nil && t.pipe.uni != nil {
		if int64(id) >= int64(len(t.pipe.uni.pieces)) {
			return "", false
		}
		if _, sp := t.spByID[id]; sp {
			return "", false
		}
		return t.pipe.decode.token(t.pipe.uni.pieces[id]), true
	}
	if t.pipe != nil && t.pipe.wp != nil {
		if int64(id) >= int64(len(t.pipe.wp.idToTok)) || t.pipe.wp.idToTok[id] == "" {
			return "", false
		}
		if _, sp := t.spByID[id]; sp {
			return "", false
		}
		return t.pipe.wp.token(t.pipe.wp.idToTok[id]), true
	}
	if t.pipe != nil && t.pipe.bpe != nil {
		if int64(id) >= int64(len(t.pipe.bpe.idToTok)) || t.pipe.bpe.idToTok[id] == "" {
			return "", false
		}
		if _, sp := t.spByID[id]; sp {
			return "", false
		}
		return t.pipe.decode.token(t.pipe.bpe.idToTok[id]), true
	}
	r := id
	if t.idToRank != nil {
		var ok bool
		if r, ok = t.idToRank[id]; !ok {
			return "", false
		}
	}
	return t.ranks.bytesOf(r)
}

// RanksHash returns the hex SHA-256 of the vocabulary: every ordinary token
// (id, rank, bytes) in id order, then every special (id, text) in id order.
// Two tokenizers with the same hash encode identically (given the pattern,
// which is hashed too).
func (t *Tokenizer) RanksHash() string {
	if t.hash != "" {
		return t.hash
	}
	h := sha256.New()
	var buf [12]byte
	h.Write([]byte("smelt-bpe-v1\x00" + t.pattern.String() + "\x00"))
	for id := uint32(0); id <= t.maxID; id++ {
		s, ok := t.decodeOrdinary(id)
		if !ok {
			continue
		}
		r := id
		if t.idToRank != nil {
			r = t.idToRank[id]
		}
		binary.LittleEndian.PutUint32(buf[0:], id)
		binary.LittleEndian.PutUint32(buf[4:], r)
		binary.LittleEndian.PutUint32(buf[8:], uint32(len(s)))
		h.Write(buf[:])
		h.Write([]byte(s))
	}
	ids := make([]uint32, 0, len(t.spByID))
	for id := range t.spByID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		s := t.spByID[id]
		binary.LittleEndian.PutUint32(buf[0:], id)
		binary.LittleEndian.PutUint32(buf[4:], 0xFFFFFFFF)
		binary.LittleEndian.PutUint32(buf[8:], uint32(len(s)))
		h.Write(buf[:])
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// EncodeOrdinary encodes text with special tokens treated as plain text. It
// accepts any byte string (invalid UTF-8 included) and never fails.
func (t *Tokenizer) EncodeOrdinary(text string) []uint32 {
	return t.AppendEncodeOrdinary(make([]uint32, 0, len(text)/4+1), text)
}

// AppendEncodeOrdinary appends the ids of text to dst and returns the
// extended slice. It allocates nothing beyond dst's growth (pieces longer than
// 64 bytes that are not single tokens use a heap allocation).
func (t *Tokenizer) AppendEncodeOrdinary(dst []uint32, text string) []uint32 {
	if t.pipe != nil {
		return t.appendPipeline(dst, text)
	}
	ct := classTable()
	split := t.split
	for p := 0; p < len(text); {
		e := split(ct, text, p)
		dst = t.appendPiece(dst, text[p:e])
		p = e
	}
	return dst
}

// AllSpecial, as the allowed or disallowed set of Encode, means every
// special token of the vocabulary (tiktoken's "all").
var AllSpecial = []string{"all"}

// NoSpecial is an empty, non-nil set: as Encode's disallowed set it turns
// off the check for special tokens in text.
var NoSpecial = []string{}

// DisallowedSpecialError reports text containing a disallowed special token.
type DisallowedSpecialError struct {
	Token  string // the special token
	Offset int    // byte offset in the text
}

func (e *DisallowedSpecialError) Error() string {
	return fmt.Sprintf("tokenize: text contains disallowed special token %q at byte offset %d; "+
		"allow it to encode it as a special token, or leave it out of disallowed to encode it as plain text", e.Token, e.Offset)
}

// ErrUnknownSpecial is returned when an allowed or disallowed set names a
// token the vocabulary does not have.
var ErrUnknownSpecial = errors.New("tokenize: unknown special token")

func (t *Tokenizer) specialSet(list []string) (map[string]bool, error) {
	if len(list) == 1 && list[0] == "all" {
		if _, real := t.specials["all"]; !real {
			m := make(map[string]bool, len(t.specials))
			for s := range t.specials {
				m[s] = true
			}
			return m, nil
		}
	}
	m := make(map[string]bool, len(list))
	for _, s := range list {
		if _, ok := t.specials[s]; !ok {
			return nil, fmt.Errorf("%w %q in %s", ErrUnknownSpecial, s, t.name)
		}
		m[s] = true
	}
	return m, nil
}

// findSpecial returns the earliest (longest at a tie) occurrence at or after
// from of a special token in set.
func (t *Tokenizer) findSpecial(text string, from int, set map[string]bool) (int, string) {
	best, bestTok := -1, ""
	for _, s := range t.specList {
		if !set[s] {
			continue
		}
		limit := len(text)
		if best >= 0 {
			limit = min(len(text), best+len(s))
		}
		if i := strings.Index(text[from:limit], s); i >= 0 && (best < 0 || from+i < best) {
			best, bestTok = from+i, s
		}
	}
	return best, bestTok
}

// Encode encodes text with tiktoken's special-token semantics: occurrences
// of an allowed special token become its id; an occurrence of a disallowed
// one is a *DisallowedSpecialError; any other special text is encoded as
// plain text. A nil disallowed set means tiktoken's default, every special
// token not allowed. Either set may be AllSpecial.
func (t *Tokenizer) Encode(text string, allowed, disallowed []string) ([]uint32, error) {
	return t.appendEncode(make([]uint32, 0, len(text)/4+1), text, allowed, disallowed)
}

func (t *Tokenizer) appendEncode(out []uint32, text string, allowed, disallowed []string) ([]uint32, error) {
	al, err := t.specialSet(allowed)
	if err != nil {
		return nil, err
	}
	var dis map[string]bool
	if disallowed == nil {
		dis = make(map[string]bool)
		for s := range t.specials {
			if !al[s] {
				dis[s] = true
			}
		}
	} else if dis, err = t.specialSet(disallowed); err != nil {
		return nil, err
	}
	if len(dis) > 0 {
		if at, tok := t.findSpecial(text, 0, dis); at >= 0 {
			return nil, &DisallowedSpecialError{Token: tok, Offset: at}
		}
	}
	// Next occurrence of each allowed special at or after start (-1: none
	// left), refreshed only when passed, so the scan stays linear however
	// many specials the text holds.
	type next struct {
		tok string
		at  int
	}
	var nexts []next
	for _, s := range t.specList {
		if al[s] {
			nexts = append(nexts, next{s, -2})
		}
	}
	start := 0
	for {
		at, tok := -1, ""
		for i := range nexts {
			n := &nexts[i]
			if n.at == -2 || (n.at >= 0 && n.at < start) {
				n.at = -1
				if j := strings.Index(text[start:], n.tok); j >= 0 {
					n.at = start + j
				}
			}
			// specList is longest first, so a tie keeps the longer token.
			if n.at >= 0 && (at < 0 || n.at < at) {
				at, tok = n.at, n.tok
			}
		}
		if at < 0 {
			return t.AppendEncodeOrdinary(out, text[start:]), nil
		}
		out = t.AppendEncodeOrdinary(out, text[start:at])
		out = append(out, t.specials[tok])
		start = at + len(tok)
	}
}

// UnknownIDError reports an id that is in neither the vocabulary nor the
// special tokens.
type UnknownIDError struct {
	ID    uint32
	Index int // position in the decoded slice
}

func (e *UnknownIDError) Error() string {
	return "tokenize: unknown token id " + strconv.FormatUint(uint64(e.ID), 10) + " at index " + strconv.Itoa(e.Index)
}

// Decode returns the bytes of ids (special tokens as their text). The
// result need not be valid UTF-8 when ids split a character.
func (t *Tokenizer) Decode(ids []uint32) ([]byte, error) {
	return t.AppendDecode(make([]byte, 0, len(ids)*4), ids)
}

// AppendDecode appends the bytes of ids to dst.
func (t *Tokenizer) AppendDecode(dst []byte, ids []uint32) ([]byte, error) {
	for i, id := range ids {
		if s, ok := t.decodeOrdinary(id); ok {
			dst = append(dst, s...)
			continue
		}
		if s, ok := t.spByID[id]; ok {
			dst = append(dst, s...)
			continue
		}
		if s, ok := t.added[id]; ok {
			dst = append(dst, s...)
			continue
		}
		return dst, &UnknownIDError{ID: id, Index: i}
	}
	return dst, nil
}
