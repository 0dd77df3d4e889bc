package tokenize

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/dlclark/regexp2"
)

// The parts of a Hugging Face tokenizer.json smelt reads.
type hfAdded struct {
	ID         uint32 `json:"id"`
	Content    string `json:"content"`
	Special    bool   `json:"special"`
	Lstrip     bool   `json:"lstrip"`
	Rstrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	SingleWord bool   `json:"single_word"`
}

type hfFile struct {
	AddedTokens   []hfAdded       `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         json.RawMessage `json:"model"`
}

type hfModel struct {
	Type         string  `json:"type"`
	UnkToken     *string `json:"unk_token"`
	ByteFallback bool    `json:"byte_fallback"`
	FuseUnk      bool    `json:"fuse_unk"`
	IgnoreMerges bool    `json:"ignore_merges"`
	Prefix       *string `json:"continuing_subword_prefix"`
	Suffix       *string `json:"end_of_word_suffix"`
	UnkID        *int64  `json:"unk_id"`                   // Unigram
	MaxChars     *int    `json:"max_input_chars_per_word"` // WordPiece
}

type hfPattern struct {
	Regex  *string `json:"Regex"`
	String *string `json:"String"`
}

// hfComponent is any normalizer, pre-tokenizer or decoder object.
type hfComponent struct {
	Type           string          `json:"type"`
	Normalizers    []hfComponent   `json:"normalizers"`
	Pretokenizers  []hfComponent   `json:"pretokenizers"`
	Decoders       []hfComponent   `json:"decoders"`
	Pattern        hfPattern       `json:"pattern"`
	Content        string          `json:"content"`
	Prepend        string          `json:"prepend"`
	Behavior       string          `json:"behavior"`
	Invert         bool            `json:"invert"`
	UseRegex       *bool           `json:"use_regex"`
	AddPrefixSpace *bool           `json:"add_prefix_space"`
	Replacement    string          `json:"replacement"`
	PrependScheme  string          `json:"prepend_scheme"`
	Split          *bool           `json:"split"`
	Individual     bool            `json:"individual_digits"`
	Left           *bool           `json:"strip_left"`
	Right          *bool           `json:"strip_right"`
	Charsmap       *string         `json:"precompiled_charsmap"`
	Single         json.RawMessage `json:"single"`
	Cls            json.RawMessage `json:"cls"`
	Sep            json.RawMessage `json:"sep"`
	Processors     []hfComponent   `json:"processors"`
	CleanText      *bool           `json:"clean_text"`           // BertNormalizer
	HandleChinese  *bool           `json:"handle_chinese_chars"` // BertNormalizer
	StripAccents   *bool           `json:"strip_accents"`        // BertNormalizer
	Lowercase      *bool           `json:"lowercase"`            // BertNormalizer
}

func parseComponent(raw json.RawMessage) (*hfComponent, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || string(t) == "null" {
		return nil, nil
	}
	var c hfComponent
	if err := json.Unmarshal(t, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// knownSplits are the patterns with hand-written scanners.
var knownSplits = map[string]splitFunc{
	PatternGPT2.Regexp():   gpt2Next,
	PatternCL100K.Regexp(): cl100kNext,
	PatternO200K.Regexp():  o200kNext,
	qwenRegexp:             qwenNext,
}

// simplePattern maps a byte-level pre_tokenizer that the plain fast path
// reproduces exactly (one known regex split, Isolated, then ByteLevel
// without a prefix space) to its Pattern.
func simplePattern(c *hfComponent) (Pattern, bool) {
	if c == nil {
		return 0, false
	}
	noPrefix := c.AddPrefixSpace == nil || !*c.AddPrefixSpace
	switch c.Type {
	case "ByteLevel":
		return PatternGPT2, noPrefix && (c.UseRegex == nil || *c.UseRegex)
	case "Sequence":
		if len(c.Pretokenizers) != 2 {
			return 0, false
		}
		s, b := c.Pretokenizers[0], c.Pretokenizers[1]
		if s.Type != "Split" || s.Pattern.Regex == nil || s.Behavior != "Isolated" || s.Invert ||
			b.Type != "ByteLevel" || (b.UseRegex != nil && *b.UseRegex) || (b.AddPrefixSpace != nil && *b.AddPrefixSpace) {
			return 0, false
		}
		for _, p := range []Pattern{PatternGPT2, PatternCL100K, PatternO200K} {
			if *s.Pattern.Regex == p.Regexp() {
				return p, true
			}
		}
	}
	return 0, false
}

func hasByteLevel(c *hfComponent) bool {
	if c == nil {
		return false
	}
	if c.Type == "ByteLevel" {
		return true
	}
	for i := range c.Pretokenizers {
		if hasByteLevel(&c.Pretokenizers[i]) {
			return true
		}
	}
	return false
}

// hfRegex compiles a Split or Replace regex. The tokenizers library uses
// Oniguruma; regexp2 (a .NET-syntax backtracking engine) reads the same
// constructs models use (\p{L}, lookahead, (?i:...)), which Go's regexp
// lacks.
func hfRegex(pat string) (*regexp2.Regexp, error) {
	re, err := regexp2.Compile(pat, regexp2.Unicode)
	if err != nil {
		return nil, fmt.Errorf("regex %q: %w", pat, err)
	}
	return re, nil
}

func buildNormalizers(c *hfComponent, out []normalizer) ([]normalizer, error) {
	if c == nil {
		return out, nil
	}
	switch c.Type {
	case "Sequence":
		for i := range c.Normalizers {
			var err error
			if out, err = buildNormalizers(&c.Normalizers[i], out); err != nil {
				return nil, err
			}
		}
	case "NFC":
		out = append(out, normNFC)
	case "NFD":
		out = append(out, normNFD)
	case "NFKC":
		out = append(out, normNFKC)
	case "NFKD":
		out = append(out, normNFKD)
	case "Lowercase":
		out = append(out, normLowercase)
	case "Prepend":
		out = append(out, normPrepend(c.Prepend))
	case "Replace":
		switch {
		case c.Pattern.String != nil:
			out = append(out, normReplaceString(*c.Pattern.String, c.Content))
		case c.Pattern.Regex != nil:
			re, err := hfRegex(*c.Pattern.Regex)
			if err != nil {
				return nil, fmt.Errorf("normalizer Replace: %w", err)
			}
			out = append(out, normReplaceRegex(re, c.Content))
		default:
			return nil, errors.New("normalizer Replace has neither a String nor a Regex pattern")
		}
	case "Strip":
		left, right := true, true
		if c.Left != nil {
			left = *c.Left
		}
		if c.Right != nil {
			right = *c.Right
		}
		out = append(out, normStrip(left, right))
	case "BertNormalizer":
		out = append(out, bertNormalizerOptions(c))
	case "Precompiled":
		if c.Charsmap == nil || *c.Charsmap == "" {
			return out, nil
		}
		pc, err := newPrecompiled(*c.Charsmap)
		if err != nil {
			return nil, err
		}
		out = append(out, pc.normalize)
	default:
		return nil, fmt.Errorf("normalizer type %q is not supported (smelt reads NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip, Precompiled, BertNormalizer and Sequence)", c.Type)
	}
	return out, nil
}

var behaviors = map[string]int{"Removed": behRemoved, "Isolated": behIsolated,
	"MergedWithPrevious": behMergedWithPrevious, "MergedWithNext": behMergedWithNext, "Contiguous": behContiguous}

func buildPreTokenizers(c *hfComponent, byteLevel bool, out []preTokenizer) ([]preTokenizer, error) {
	if c == nil {
		return out, nil
	}
	switch c.Type {
	case "Sequence":
		for i := range c.Pretokenizers {
			var err error
			if out, err = buildPreTokenizers(&c.Pretokenizers[i], byteLevel, out); err != nil {
				return nil, err
			}
		}
	case "Split":
		beh, ok := behaviors[c.Behavior]
		if !ok {
			return nil, fmt.Errorf("pre_tokenizer Split behavior %q is not supported", c.Behavior)
		}
		switch {
		case c.Pattern.String != nil:
			out = append(out, preSplitString(*c.Pattern.String, beh, c.Invert))
		case c.Pattern.Regex != nil:
			if f, ok := knownSplits[*c.Pattern.Regex]; ok && beh == behIsolated && !c.Invert {
				out = append(out, preSplitFunc(f))
				break
			}
			re, err := hfRegex(*c.Pattern.Regex)
			if err != nil {
				return nil, fmt.Errorf("pre_tokenizer Split: %w", err)
			}
			out = append(out, preSplitRegex(re, beh, c.Invert))
		default:
			return nil, errors.New("pre_tokenizer Split has neither a String nor a Regex pattern")
		}
	case "ByteLevel":
		if !byteLevel {
			return nil, errors.New("pre_tokenizer ByteLevel with a vocabulary that is not byte-level is not supported")
		}
		out = append(out, preByteLevel(c.AddPrefixSpace != nil && *c.AddPrefixSpace, c.UseRegex == nil || *c.UseRegex))
	case "Metaspace":
		repl := c.Replacement
		if repl == "" {
			repl = "▁"
		}
		scheme := prependAlways
		switch c.PrependScheme {
		case "", "always":
			if c.AddPrefixSpace != nil && !*c.AddPrefixSpace {
				scheme = prependNever
			}
		case "first":
			scheme = prependFirst
		case "never":
			scheme = prependNever
		default:
			return nil, fmt.Errorf("pre_tokenizer Metaspace prepend_scheme %q is not supported", c.PrependScheme)
		}
		out = append(out, preMetaspace(repl, scheme, c.Split == nil || *c.Split))
	case "Digits":
		if c.Individual {
			out = append(out, preRuns(isNumeric, true, behIsolated))
		} else {
			out = append(out, preRuns(isNumeric, false, behIsolated))
		}
	case "Punctuation":
		beh := behIsolated
		if c.Behavior != "" {
			var ok bool
			if beh, ok = behaviors[c.Behavior]; !ok {
				return nil, fmt.Errorf("pre_tokenizer Punctuation behavior %q is not supported", c.Behavior)
			}
		}
		out = append(out, preRuns(isPunct, true, beh))
	case "Whitespace":
		out = append(out, preWhitespace)
	case "WhitespaceSplit":
		out = append(out, preWhitespaceSplit)
	case "BertPreTokenizer":
		// Whitespace removed, then every punctuation char isolated.
		out = append(out, preWhitespaceSplit, preRuns(isPunct, true, behIsolated))
	default:
		return nil, fmt.Errorf("pre_tokenizer type %q is not supported (smelt reads Split, ByteLevel, Metaspace, Digits, Punctuation, Whitespace, WhitespaceSplit, BertPreTokenizer and Sequence)", c.Type)
	}
	return out, nil
}

// hfBoundaries are the document-boundary tokens a tokenizer's own files
// name: the post-processor's template, and a tokenizer_config.json beside
// the tokenizer.json.
type hfBoundaries struct {
	templateBOS, templateEOS string
	configBOS, configEOS     string
	configAddBOS             bool
	modelEOS                 string // a SentencePiece model's eos piece
	modelBOS                 string // a SentencePiece model's bos piece
}

func templateTokens(pp *hfComponent) (bos, eos string) {
	if pp == nil {
		return "", ""
	}
	switch pp.Type {
	case "TemplateProcessing":
		var items []struct {
			SpecialToken *struct {
				ID string `json:"id"`
			} `json:"SpecialToken"`
		}
		if json.Unmarshal(pp.Single, &items) != nil || len(items) == 0 {
			return "", ""
		}
		if s := items[0].SpecialToken; s != nil {
			bos = s.ID
		}
		if s := items[len(items)-1].SpecialToken; s != nil && len(items) > 1 {
			eos = s.ID
		}
	case "RobertaProcessing", "BertProcessing":
		var cls, sep []any
		if json.Unmarshal(pp.Cls, &cls) == nil && len(cls) > 0 {
			bos, _ = cls[0].(string)
		}
		if json.Unmarshal(pp.Sep, &sep) == nil && len(sep) > 0 {
			eos, _ = sep[0].(string)
		}
	case "Sequence":
		for i := range pp.Processors {
			b, e := templateTokens(&pp.Processors[i])
			if b != "" {
				bos = b
			}
			if e != "" {
				eos = e
			}
		}
	}
	return bos, eos
}

// tokenizerConfig is the part of a tokenizer_config.json smelt reads.
type tokenizerConfig struct {
	BOS    json.RawMessage `json:"bos_token"`
	EOS    json.RawMessage `json:"eos_token"`
	AddBOS *bool           `json:"add_bos_token"`
}

// boundaries records the config's bos/eos names in b.
func (c *tokenizerConfig) boundaries(b *hfBoundaries) {
	name := func(raw json.RawMessage) string {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		var o struct {
			Content string `json:"content"`
		}
		if json.Unmarshal(raw, &o) == nil {
			return o.Content
		}
		return ""
	}
	b.configBOS, b.configEOS = name(c.BOS), name(c.EOS)
	b.configAddBOS = c.AddBOS != nil && *c.AddBOS
}

// readTokenizerConfig reads the bos/eos names of a tokenizer_config.json in
// dir, if there is one.
func readTokenizerConfig(dir string, b *hfBoundaries) {
	data, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		return
	}
	var c tokenizerConfig
	if json.Unmarshal(data, &c) != nil {
		return
	}
	c.boundaries(b)
}

func loadHF(path string, data []byte, top map[string][]byte) (*Tokenizer, error) {
	t, err := loadHFFile(path, data, top)
	if err != nil {
		return nil, fmt.Errorf("tokenize: %s: %w", path, err)
	}
	return t, nil
}

func loadHFFile(path string, data []byte, top map[string][]byte) (*Tokenizer, error) {
	f := hfFile{Normalizer: top["normalizer"], PreTokenizer: top["pre_tokenizer"],
		PostProcessor: top["post_processor"], Decoder: top["decoder"]}
	if raw := top["added_tokens"]; raw != nil {
		if err := json.Unmarshal(raw, &f.AddedTokens); err != nil {
			return nil, fmt.Errorf("tokenizer.json: added_tokens: %w", err)
		}
	}
	// The model object: vocab and merges with the fast scanner, the rest
	// (a few small fields) with encoding/json.
	ms := &jscan{data: top["model"]}
	var vocabRaw, mergesRaw []byte
	small := []byte{'{'}
	err := ms.object(func(k string) error {
		v, err := ms.skip()
		switch k {
		case "vocab":
			vocabRaw = v
		case "merges":
			mergesRaw = v
		default:
			if len(small) > 1 {
				small = append(small, ',')
			}
			small = strconv.AppendQuote(small, k)
			small = append(small, ':')
			small = append(small, v...)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json: model: %w", err)
	}
	small = append(small, '}')
	var m hfModel
	if err := json.Unmarshal(small, &m); err != nil {
		return nil, fmt.Errorf("tokenizer.json: model: %w", err)
	}
	var uni *unigram
	wordpiece := false
	switch m.Type {
	case "", "BPE":
	case "WordPiece":
		wordpiece = true
	case "Unigram":
		if uni, err = newUnigram(vocabRaw, m.UnkID, m.ByteFallback); err != nil {
			return nil, fmt.Errorf("tokenizer.json: model: %w", err)
		}
	default:
		return nil, fmt.Errorf("tokenizer.json: model type %q is not supported (smelt reads BPE, Unigram and WordPiece models)", m.Type)
	}
	if uni == nil && len(vocabRaw) > 0 && vocabRaw[0] == '[' {
		return nil, errors.New("tokenizer.json: the model's vocab is a list of [piece, score] pairs (a Unigram model) without type \"Unigram\"")
	}
	if m.Prefix != nil && *m.Prefix != "" && !wordpiece {
		return nil, fmt.Errorf("tokenizer.json: BPE continuing_subword_prefix %q is not supported", *m.Prefix)
	}
	if m.Suffix != nil && *m.Suffix != "" {
		return nil, fmt.Errorf("tokenizer.json: BPE end_of_word_suffix %q is not supported", *m.Suffix)
	}
	var vocab map[string]uint32
	var pairs [][2]string
	if uni != nil {
		vocab = uni.vocab
	} else {
		if vocab, err = vocabMap(vocabRaw); err != nil {
			return nil, fmt.Errorf("tokenizer.json: model: %w", err)
		}
		if wordpiece {
			if len(mergesRaw) > 0 && string(bytes.TrimSpace(mergesRaw)) != "null" {
				return nil, errors.New("tokenizer.json: a WordPiece model with merges")
			}
		} else if pairs, err = mergePairs(mergesRaw); err != nil {
			return nil, fmt.Errorf("tokenizer.json: model: %w", err)
		}
	}
	norm, err := parseComponent(f.Normalizer)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json: normalizer: %w", err)
	}
	pre, err := parseComponent(f.PreTokenizer)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json: pre_tokenizer: %w", err)
	}
	post, err := parseComponent(f.PostProcessor)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json: post_processor: %w", err)
	}
	dec, err := parseComponent(f.Decoder)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json: decoder: %w", err)
	}
	specials := map[string]uint32{}
	var plain []addedToken // non-special added tokens
	var plainNorm []addedToken
	for _, a := range f.AddedTokens {
		if a.Special {
			specials[a.Content] = a.ID
			continue
		}
		id := a.ID
		if vid, ok := vocab[a.Content]; ok {
			// The tokenizers library gives an added token that is already
			// in the model's vocabulary the model's id.
			id = vid
		}
		at := addedToken{content: a.Content, id: id, lstrip: a.Lstrip, rstrip: a.Rstrip, singleWord: a.SingleWord}
		if a.Normalized {
			plainNorm = append(plainNorm, at)
		} else {
			plain = append(plain, at)
		}
	}
	var bounds hfBoundaries
	bounds.templateBOS, bounds.templateEOS = templateTokens(post)
	readTokenizerConfig(filepath.Dir(path), &bounds)
	name := strings.TrimSuffix(filepath.Base(path), ".json")
	if name == "tokenizer" {
		// tokenizer.json says nothing; the directory is the model's name.
		dir := filepath.Dir(path)
		if d := filepath.Base(dir); d == "models" || d == "model" || d == "tokenizer" {
			dir = filepath.Dir(dir)
		}
		if d := filepath.Base(dir); d != "." && d != "/" && d != ".." {
			name = d
		}
	}

	// A byte-level vocabulary: every entry but the added tokens is bytes in
	// GPT-2's printable form, and a ByteLevel pre-tokenizer maps text to it.
	byteLevel := uni == nil && !wordpiece && hasByteLevel(pre) && !m.ByteFallback
	var t *Tokenizer
	if wordpiece {
		wp, err := newWordPiece(vocab, m)
		if err != nil {
			return nil, fmt.Errorf("tokenizer.json: model: %w", err)
		}
		t = &Tokenizer{name: name}
		if err := t.setSpecials(specials); err != nil {
			return nil, err
		}
		t.pipe = &pipeline{wp: wp}
		t.maxID = max(t.maxID, uint32(len(wp.idToTok)-1))
	} else if uni != nil {
		t = &Tokenizer{name: name}
		if err := t.setSpecials(specials); err != nil {
			return nil, err
		}
		t.pipe = &pipeline{uni: uni}
		t.maxID = max(t.maxID, uint32(len(uni.pieces)-1))
	} else if byteLevel {
		bvocab := make(map[string]uint32, len(vocab))
		for k, id := range vocab {
			if sid, ok := specials[k]; ok && sid == id {
				continue
			}
			b, err := ParseByteLevel(k)
			if err != nil {
				if isAdded(f.AddedTokens, k, id) {
					continue
				}
				return nil, fmt.Errorf("tokenizer.json: vocab entry %q: %w (a ByteLevel pre_tokenizer needs a byte-level vocabulary)", k, err)
			}
			bvocab[string(b)] = id
		}
		merges := make([][2]string, len(pairs))
		for i, p := range pairs {
			if merges[i], err = parseMergePair(p[0], p[1]); err != nil {
				return nil, fmt.Errorf("tokenizer.json: merge %d: %w", i, err)
			}
		}
		pat, simple := simplePattern(pre)
		if !simple {
			pat = PatternGPT2
		}
		if t, err = buildFromMerges(name, pat, bvocab, merges, specials); err != nil {
			return nil, err
		}
		if simple && norm == nil && len(plain) == 0 && len(plainNorm) == 0 {
			t.bounds = bounds
			t.hash = t.RanksHash() // computed once, not at every call
			return t, nil
		}
	} else {
		bpe, err := newCharBPE(vocab, pairs, m)
		if err != nil {
			return nil, fmt.Errorf("tokenizer.json: %w", err)
		}
		t = &Tokenizer{name: name}
		if err := t.setSpecials(specials); err != nil {
			return nil, err
		}
		t.pipe = &pipeline{bpe: bpe}
		for _, id := range vocab {
			t.maxID = max(t.maxID, id)
		}
	}
	if t.pipe == nil {
		t.pipe = &pipeline{}
	}
	p := t.pipe
	if p.norms, err = buildNormalizers(norm, nil); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	if p.pre, err = buildPreTokenizers(pre, byteLevel, nil); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	p.raw, p.normalized = newAddedMatcher(plain), newAddedMatcher(plainNorm)
	t.added = make(map[uint32]string, len(plain)+len(plainNorm))
	for _, a := range append(plain, plainNorm...) {
		t.added[a.id] = a.content
		t.maxID = max(t.maxID, a.id)
	}
	p.streamSafe = byteLevel && len(p.pre) > 0 && !hasPrepend(norm)
	p.decode = buildDecoder(dec)
	sum := sha256.Sum256(data)
	t.hash = "hf-" + hex.EncodeToString(sum[:])
	t.bounds = bounds
	return t, nil
}

func isAdded(added []hfAdded, k string, id uint32) bool {
	for _, a := range added {
		if a.Content == k && a.ID == id {
			return true
		}
	}
	return false
}

func hasPrepend(c *hfComponent) bool {
	if c == nil {
		return false
	}
	if c.Type == "Prepend" {
		return true
	}
	for i := range c.Normalizers {
		if hasPrepend(&c.Normalizers[i]) {
			return true
		}
	}
	return false
}

func buildDecoder(c *hfComponent) decoder {
	var d decoder
	var walk func(c *hfComponent)
	walk = func(c *hfComponent) {
		if c == nil {
			return
		}
		switch c.Type {
		case "Sequence":
			for i := range c.Decoders {
				walk(&c.Decoders[i])
			}
		case "ByteFallback":
			d.byteFallback = true
		case "Metaspace":
			d.metaspace = c.Replacement
		case "Replace":
			if c.Pattern.String != nil && c.Content == " " {
				d.metaspace = *c.Pattern.String
			}
		}
	}
	walk(c)
	return d
}

func newCharBPE(vocab map[string]uint32, merges [][2]string, m hfModel) (*charBPE, error) {
	b := &charBPE{vocab: vocab, byteFallback: m.ByteFallback, fuseUnk: m.FuseUnk, ignoreMerges: m.IgnoreMerges,
		merges: make(map[uint64]uint64, len(merges))}
	maxID := uint32(0)
	for _, id := range vocab {
		maxID = max(maxID, id)
	}
	if maxID > 1<<26 {
		return nil, fmt.Errorf("BPE vocab id %d is too large", maxID)
	}
	b.idToTok = make([]string, maxID+1)
	for k, id := range vocab {
		b.idToTok[id] = k
	}
	for i, mg := range merges {
		l, ok1 := vocab[mg[0]]
		r, ok2 := vocab[mg[1]]
		n, ok3 := vocab[mg[0]+mg[1]]
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("merge %d (%q %q): a part or the result is not in the vocabulary", i, mg[0], mg[1])
		}
		// A pair listed twice keeps its last rank, as the tokenizers
		// library's HashMap collect does.
		b.merges[uint64(l)<<32|uint64(r)] = uint64(i)<<32 | uint64(n)
	}
	if m.ByteFallback {
		b.haveBytes = true
		for c := 0; c < 256; c++ {
			id, ok := vocab[byteToken(byte(c))]
			if !ok {
				b.haveBytes = false
				break
			}
			b.byteIDs[c] = id
		}
	}
	if m.UnkToken != nil {
		b.unk, b.haveUnk = vocab[*m.UnkToken]
	}
	b.setCuts()
	return b, nil
}

// sortedSpecials lists special tokens for an error message.
func sortedSpecials(m map[string]uint32) []string {
	out := make([]string, 0, len(m))
	for s := range m {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return m[out[i]] < m[out[j]] })
	return out
}
