package tokenize

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"
)

// This file reads SentencePiece .model files (a protobuf ModelProto) and
// encodes exactly as the SentencePiece library (0.1.97, Debian's) does: the
// normalizer with its precompiled charsmap, add_dummy_prefix,
// remove_extra_whitespaces and escape_whitespaces, then the BPE model (merge
// the highest-scoring adjacent pair, leftmost on ties) or the Unigram model
// (Viterbi over piece scores, unknown characters at min score - 10), then
// byte_fallback (<0xXX>) for unknown pieces, or one unknown id per run of
// unknown pieces.
//
// The protobuf is read by hand: the model needs five fields of three
// messages, and a 60-line wire reader checks every length against the file
// before it slices or allocates, where google.golang.org/protobuf (only an
// indirect dependency here) would need generated code for the schema.

// SentencePiece piece types (sentencepiece_model.proto).
const (
	spNormal      = 1
	spUnknown     = 2
	spControl     = 3
	spUserDefined = 4
	spUnused      = 5
	spByte        = 6
)

// spModel is a SentencePiece model ready to encode.
type spModel struct {
	bpe          bool // model_type BPE; else Unigram
	pieces       []string
	scores       []float32
	types        []uint8
	vocab        map[string]int32 // NORMAL, USER_DEFINED and UNUSED pieces
	reserved     map[string]int32 // the other pieces (CONTROL, UNKNOWN, BYTE)
	trie         *byteTrie        // Unigram: the vocab pieces
	unk          int32
	byteFallback bool
	byteIDs      [256]int32
	minScore     float32
	maxScore     float32
	userDefined  []string // longest first
	norm         spNormalizer
	normName     string
	cut          bool // BPE: encode in parts cut before "▁" (see encodeBPECut)
	cache        wordCache
}

// SentencePiece reports a tokenizer read from a SentencePiece .model: its
// model type ("BPE" or "Unigram") and normalization rule name.
func (t *Tokenizer) SentencePiece() (model, normalizer string, ok bool) {
	if t.pipe == nil || t.pipe.spm == nil {
		return "", "", false
	}
	m := t.pipe.spm
	model = "Unigram"
	if m.bpe {
		model = "BPE"
	}
	normalizer = m.normName
	if normalizer == "" {
		normalizer = "identity"
	}
	return model, normalizer, true
}

// spNormalizer is SentencePiece's Normalizer.
type spNormalizer struct {
	trie          []uint32 // the double-array (Darts) units; nil: identity
	normalized    string   // the NUL-terminated replacement strings
	addDummy      bool
	removeExtraWS bool
	escapeWS      bool
	wsSuffix      bool
	userDefined   []string
}

// pbReader reads protobuf wire format.
type pbReader struct {
	b    []byte
	off  int // offset of b[0] in the file, for errors
	path string
}

func (r *pbReader) err(i int, what string) error {
	return fmt.Errorf("tokenize: %s: SentencePiece model: %s at byte offset %d", r.path, what, r.off+i)
}

// varint reads a base-128 varint at b[i:].
func (r *pbReader) varint(i int) (uint64, int, error) {
	var v uint64
	for s := 0; s < 64; s += 7 {
		if i >= len(r.b) {
			return 0, 0, r.err(i, "truncated varint")
		}
		c := r.b[i]
		i++
		v |= uint64(c&0x7f) << s
		if c < 0x80 {
			return v, i, nil
		}
	}
	return 0, 0, r.err(i, "varint longer than 10 bytes")
}

// fields calls f for each field of the message in r; val is the varint
// value, the fixed32 bits or (wire type 2) the bytes, bounds-checked.
func (r *pbReader) fields(f func(num int, wire int, v uint64, b []byte, at int) error) error {
	for i := 0; i < len(r.b); {
		at := i
		tag, j, err := r.varint(i)
		if err != nil {
			return err
		}
		i = j
		num, wire := int(tag>>3), int(tag&7)
		var v uint64
		var b []byte
		switch wire {
		case 0:
			if v, i, err = r.varint(i); err != nil {
				return err
			}
		case 1:
			if len(r.b)-i < 8 {
				return r.err(i, "truncated fixed64")
			}
			v = binary.LittleEndian.Uint64(r.b[i:])
			i += 8
		case 2:
			n, j, err := r.varint(i)
			if err != nil {
				return err
			}
			if n > uint64(len(r.b)-j) {
				return r.err(at, fmt.Sprintf("field %d claims %d bytes, %d are left", num, n, len(r.b)-j))
			}
			b = r.b[j : j+int(n)]
			i = j + int(n)
		case 5:
			if len(r.b)-i < 4 {
				return r.err(i, "truncated fixed32")
			}
			v = uint64(binary.LittleEndian.Uint32(r.b[i:]))
			i += 4
		default:
			return r.err(at, fmt.Sprintf("field %d has wire type %d, which a ModelProto does not use", num, wire))
		}
		if err := f(num, wire, v, b, r.off+at); err != nil {
			return err
		}
	}
	return nil
}

func (r *pbReader) sub(b []byte, at int) *pbReader {
	// at is the file offset of the field's tag; the payload starts a few
	// bytes later, which errors report approximately by the field's offset.
	return &pbReader{b: b, off: at, path: r.path}
}

// loadSentencePiece reads a SentencePiece ModelProto.
func loadSentencePiece(path string, data []byte) (*Tokenizer, error) {
	m := &spModel{vocab: map[string]int32{}, reserved: map[string]int32{}}
	m.norm = spNormalizer{addDummy: true, removeExtraWS: true, escapeWS: true}
	modelType := int64(1)
	unkID, bosID, eosID := int64(0), int64(1), int64(2)
	normName := ""
	top := &pbReader{b: data, path: path}
	err := top.fields(func(num, wire int, v uint64, b []byte, at int) error {
		switch {
		case num == 1 && wire == 2: // pieces
			piece, score, typ := "", float32(0), uint64(spNormal)
			err := top.sub(b, at).fields(func(num, wire int, v uint64, b []byte, _ int) error {
				switch {
				case num == 1 && wire == 2:
					piece = string(b)
				case num == 2 && wire == 5:
					score = math.Float32frombits(uint32(v))
				case num == 3 && wire == 0:
					typ = v
				}
				return nil
			})
			if err != nil {
				return err
			}
			if piece == "" {
				return top.err(at-top.off, fmt.Sprintf("piece %d is empty", len(m.pieces)))
			}
			if typ < spNormal || typ > spByte {
				return top.err(at-top.off, fmt.Sprintf("piece %q has unknown type %d", piece, typ))
			}
			m.pieces = append(m.pieces, piece)
			m.scores = append(m.scores, score)
			m.types = append(m.types, uint8(typ))
		case num == 2 && wire == 2: // trainer_spec
			return top.sub(b, at).fields(func(num, wire int, v uint64, b []byte, _ int) error {
				if wire != 0 {
					return nil
				}
				switch num {
				case 3:
					modelType = int64(v)
				case 24:
					m.norm.wsSuffix = v != 0
				case 35:
					m.byteFallback = v != 0
				case 40:
					unkID = int64(int32(v))
				case 41:
					bosID = int64(int32(v))
				case 42:
					eosID = int64(int32(v))
				}
				return nil
			})
		case num == 3 && wire == 2: // normalizer_spec
			return top.sub(b, at).fields(func(num, wire int, v uint64, b []byte, _ int) error {
				switch {
				case num == 1 && wire == 2:
					normName = string(b)
				case num == 2 && wire == 2:
					tr, nz, err := parseCharsmap(b)
					if err != nil {
						return fmt.Errorf("tokenize: %s: SentencePiece model: precompiled_charsmap: %w", path, err)
					}
					m.norm.trie, m.norm.normalized = tr, string(nz)
				case num == 3 && wire == 0:
					m.norm.addDummy = v != 0
				case num == 4 && wire == 0:
					m.norm.removeExtraWS = v != 0
				case num == 5 && wire == 0:
					m.norm.escapeWS = v != 0
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(m.pieces) == 0 {
		return nil, fmt.Errorf("tokenize: %s: SentencePiece model has no pieces", path)
	}
	switch modelType {
	case 1:
	case 2:
		m.bpe = true
	default:
		return nil, fmt.Errorf("tokenize: %s: SentencePiece model_type %d is not supported (smelt reads UNIGRAM=1 and BPE=2 models)", path, modelType)
	}
	if m.norm.wsSuffix {
		return nil, fmt.Errorf("tokenize: %s: SentencePiece treat_whitespace_as_suffix is not supported", path)
	}
	m.unk = -1
	for i := range m.byteIDs {
		m.byteIDs[i] = -1
	}
	m.minScore, m.maxScore = math.MaxFloat32, 0x1p-126 // FLT_MAX, FLT_MIN as the library starts them
	for i, p := range m.pieces {
		typ := m.types[i]
		dst := m.reserved
		if typ == spNormal || typ == spUserDefined || typ == spUnused {
			dst = m.vocab
		}
		if _, dup := dst[p]; dup {
			return nil, fmt.Errorf("tokenize: %s: SentencePiece piece %q is defined twice", path, p)
		}
		dst[p] = int32(i)
		switch typ {
		case spUnknown:
			if m.unk >= 0 {
				return nil, fmt.Errorf("tokenize: %s: SentencePiece model has two unknown pieces", path)
			}
			m.unk = int32(i)
		case spUserDefined:
			m.userDefined = append(m.userDefined, p)
		case spByte:
			if b, ok := parseBytePiece(p); ok {
				m.byteIDs[b] = int32(i)
			}
		case spNormal:
			m.minScore = min(m.minScore, m.scores[i])
			m.maxScore = max(m.maxScore, m.scores[i])
		}
	}
	if m.unk < 0 {
		return nil, fmt.Errorf("tokenize: %s: SentencePiece model has no unknown piece", path)
	}
	if unkID >= 0 && unkID != int64(m.unk) {
		return nil, fmt.Errorf("tokenize: %s: SentencePiece unk_id %d is not the unknown piece (%d)", path, unkID, m.unk)
	}
	if m.byteFallback {
		for b, id := range m.byteIDs {
			if id < 0 {
				return nil, fmt.Errorf("tokenize: %s: SentencePiece byte_fallback is set but byte piece <0x%02X> is missing", path, b)
			}
		}
	}
	// Longest first, for the prefix match of user-defined symbols.
	sortLongestFirst(m.userDefined)
	m.norm.userDefined = m.userDefined
	m.normName = normName
	m.cut = m.bpe
	for p := range m.vocab {
		if strings.Contains(p[1:], metaspace) {
			m.cut = false
		}
	}
	if !m.bpe {
		keys := make([]string, 0, len(m.vocab))
		vals := make([]int32, 0, len(m.vocab))
		for p, id := range m.vocab {
			keys = append(keys, p)
			vals = append(vals, id)
		}
		m.trie = newByteTrie(keys, vals)
	}

	t := &Tokenizer{name: strings.TrimSuffix(baseName(path), ".model")}
	specials := map[string]uint32{}
	for i, p := range m.pieces {
		if m.types[i] == spControl {
			specials[p] = uint32(i)
		}
	}
	if err := t.setSpecials(specials); err != nil {
		return nil, err
	}
	t.maxID = uint32(len(m.pieces) - 1)
	t.pipe = &pipeline{spm: m}
	if eosID >= 0 && eosID < int64(len(m.pieces)) {
		t.bounds.modelEOS = m.pieces[eosID]
	}
	if bosID >= 0 && bosID < int64(len(m.pieces)) {
		t.bounds.modelBOS = m.pieces[bosID]
	}
	sum := sha256.Sum256(data)
	t.hash = "spm-" + hex.EncodeToString(sum[:])
	return t, nil
}

func baseName(path string) string {
	if i := strings.LastIndexAny(path, `/\`); i >= 0 {
		return path[i+1:]
	}
	return path
}

func sortLongestFirst(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && len(s[j]) > len(s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// parseBytePiece parses "<0xXX>".
func parseBytePiece(p string) (byte, bool) {
	if len(p) != 6 || p[:3] != "<0x" || p[5] != '>' {
		return 0, false
	}
	var v byte
	for _, c := range []byte(p[3:5]) {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | (c - '0')
		case c >= 'A' && c <= 'F':
			v = v<<4 | (c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return v, true
}

// parseCharsmap splits a precompiled charsmap: a little-endian uint32 trie
// size in bytes, the double-array trie units, then the NUL-terminated
// normalized strings the trie's values index.
func parseCharsmap(b []byte) ([]uint32, []byte, error) {
	if len(b) == 0 {
		return nil, nil, nil
	}
	if len(b) < 4 {
		return nil, nil, errors.New("shorter than its 4-byte header")
	}
	n := binary.LittleEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) || n%4 != 0 || n == 0 {
		return nil, nil, fmt.Errorf("trie size %d does not fit the %d bytes left", n, len(b)-4)
	}
	units := make([]uint32, n/4)
	for i := range units {
		units[i] = binary.LittleEndian.Uint32(b[4+4*i:])
	}
	return units, b[4+n:], nil
}

// prefixMatch returns the longest charsmap entry that is a prefix of s:
// its key length and the replacement, as Darts' commonPrefixSearch with
// SentencePiece's 32 results, every index checked against the array.
func (n *spNormalizer) prefixMatch(s string) (int, string) {
	a := n.trie
	pos := uint32(0)
	unit := a[0]
	pos ^= dartsOffset(unit)
	bestLen, bestVal := 0, uint32(0)
	found := 0
	for i := 0; i < len(s); i++ {
		pos ^= uint32(s[i])
		if pos >= uint32(len(a)) {
			break
		}
		unit = a[pos]
		if unit&(1<<31|0xff) != uint32(s[i]) {
			break
		}
		pos ^= dartsOffset(unit)
		if (unit>>8)&1 != 0 {
			if pos >= uint32(len(a)) {
				break
			}
			if found < 32 {
				bestLen, bestVal = i+1, a[pos]&(1<<31-1)
			}
			found++
		}
	}
	if bestLen == 0 {
		return 0, ""
	}
	if int(bestVal) >= len(n.normalized) {
		return 0, ""
	}
	rest := n.normalized[bestVal:]
	if end := strings.IndexByte(rest, 0); end >= 0 {
		rest = rest[:end]
	}
	return bestLen, rest
}

func dartsOffset(u uint32) uint32 { return (u >> 10) << ((u & (1 << 9)) >> 6) }

// normalizePrefix returns the normalized form of the start of s and how
// many bytes of s it consumes (SentencePiece's Normalizer::NormalizePrefix).
func (n *spNormalizer) normalizePrefix(s string) (string, int) {
	for _, u := range n.userDefined {
		if strings.HasPrefix(s, u) {
			return u, len(u)
		}
	}
	if n.trie != nil {
		if l, v := n.prefixMatch(s); l > 0 {
			return v, l
		}
	}
	r, size := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && size == 1 {
		return "\uFFFD", 1
	}
	return s[:size], size
}

// normalize is SentencePiece's Normalizer::Normalize.
func (n *spNormalizer) normalize(dst []byte, s string) []byte {
	dst = dst[:0]
	if n.removeExtraWS {
		for s != "" {
			p, l := n.normalizePrefix(s)
			if p != " " {
				break
			}
			s = s[l:]
		}
	}
	if s == "" {
		return dst
	}
	if n.addDummy {
		dst = n.appendWS(dst)
	}
	prevSpace := n.removeExtraWS
	for s != "" {
		p, l := n.normalizePrefix(s)
		for prevSpace && strings.HasPrefix(p, " ") {
			p = p[1:]
		}
		if p != "" {
			for i := 0; i < len(p); i++ {
				if n.escapeWS && p[i] == ' ' {
					dst = append(dst, metaspace...)
				} else {
					dst = append(dst, p[i])
				}
			}
			prevSpace = p[len(p)-1] == ' '
		}
		s = s[l:]
		if !n.removeExtraWS {
			prevSpace = false
		}
	}
	if n.removeExtraWS {
		sp := " "
		if n.escapeWS {
			sp = metaspace
		}
		for len(dst) >= len(sp) && string(dst[len(dst)-len(sp):]) == sp {
			dst = dst[:len(dst)-len(sp)]
		}
	}
	return dst
}

func (n *spNormalizer) appendWS(dst []byte) []byte {
	if n.escapeWS {
		return append(dst, metaspace...)
	}
	return append(dst, ' ')
}

// oneCharLen is SentencePiece's OneCharLen: the UTF-8 length its lead
// byte announces.
func oneCharLen(c byte) int {
	return int([16]uint8{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4}[c>>4])
}

// spScratch holds one encode call's buffers, pooled: the normalized text,
// the pieces and the Unigram table (allocating them per document made
// garbage collection a third of the encode CPU).
type spScratch struct {
	norm   []byte
	pieces []spPiece
	best   []spNode
}

var spScratchPool = sync.Pool{New: func() any { return new(spScratch) }}

// encode appends the ids of text.
func (m *spModel) encode(dst []uint32, text string) []uint32 {
	sc := spScratchPool.Get().(*spScratch)
	defer spScratchPool.Put(sc)
	sc.norm = m.norm.normalize(sc.norm[:0], text)
	if len(sc.norm) == 0 {
		return dst
	}
	// The pieces point into sc.norm and do not outlive this call (the word
	// cache copies its keys).
	s := unsafe.String(unsafe.SliceData(sc.norm), len(sc.norm))
	var pieces []spPiece
	switch {
	case m.bpe && m.cut:
		pieces = m.encodeBPECut(sc.pieces[:0], s)
	case m.bpe:
		pieces = m.encodeBPE(sc.pieces[:0], s)
	default:
		pieces = m.encodeUnigram(sc.pieces[:0], sc, s)
	}
	sc.pieces = pieces[:0]
	prevUnk := false
	for _, p := range pieces {
		isUnk := p.id == m.unk
		switch {
		case isUnk && m.byteFallback:
			for i := 0; i < len(p.s); i++ {
				dst = append(dst, uint32(m.byteIDs[p.s[i]]))
			}
		case isUnk && prevUnk:
			// A run of unknown pieces is one unknown token.
		default:
			dst = append(dst, uint32(p.id))
		}
		prevUnk = isUnk
	}
	return dst
}

type spPiece struct {
	s  string
	id int32
}

// pieceID is ModelInterface::PieceToId.
func (m *spModel) pieceID(p string) int32 {
	if id, ok := m.reserved[p]; ok {
		return id
	}
	if id, ok := m.vocab[p]; ok {
		return id
	}
	return m.unk
}

// userPrefix returns the length of the user-defined symbol s starts with,
// or 0.
func (m *spModel) userPrefix(s string) int {
	for _, u := range m.userDefined {
		if strings.HasPrefix(s, u) {
			return len(u)
		}
	}
	return 0
}

// decodeToken returns the text of an ordinary piece: "▁" as a space, a
// byte piece as its byte; control pieces are not ordinary.
func (m *spModel) decodeToken(id uint32) (string, bool) {
	if int64(id) >= int64(len(m.pieces)) {
		return "", false
	}
	p := m.pieces[id]
	switch m.types[id] {
	case spControl:
		return "", false
	case spByte:
		if b, ok := parseBytePiece(p); ok {
			return string([]byte{b}), true
		}
	case spUnknown:
		return " \u2047 ", true // the library's default unk_surface
	}
	return strings.ReplaceAll(p, metaspace, " "), true
}
