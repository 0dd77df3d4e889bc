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
)

// Options are what a tokenizer file may need beside itself: the document
// boundaries, and for a tiktoken rank file (which holds only token bytes and
// ranks, as Llama 3's tokenizer.model does) its split pattern and special
// tokens.
type Options struct {
	// EOS and BOS are given to WithEOS and WithBOS.
	EOS, BOS string
	// Pattern is a tiktoken rank file's pre-tokenisation: a name (see
	// PatternNames) or a regular expression in the syntax tiktoken and
	// tokenizer.json write (\p{L}, lookahead (?!\S), (?i:...)).
	Pattern string
	// Specials are a tiktoken rank file's special tokens: "TOKEN=ID,..." or
	// a file: a JSON object {"TOKEN": ID}, a tokenizer_config.json
	// (added_tokens_decoder, and its eos_token and bos_token become the
	// defaults), a tokenizer.json (added_tokens), or lines "TOKEN ID".
	Specials string

	// specials, bounds and name are a bundle's (see Portable): its special
	// tokens, document boundaries and tokenizer name, used instead of
	// Specials and the file's name.
	specials map[string]uint32
	bounds   hfBoundaries
	name     string
}

// patternNames are the split patterns a tiktoken rank file may name.
var patternNames = map[string]string{
	"gpt2": PatternGPT2.Regexp(), "r50k": PatternGPT2.Regexp(), "r50k_base": PatternGPT2.Regexp(),
	"p50k": PatternGPT2.Regexp(), "p50k_base": PatternGPT2.Regexp(),
	"cl100k": PatternCL100K.Regexp(), "cl100k_base": PatternCL100K.Regexp(),
	// Llama 3's tokenizer.model was made with cl100k's pattern (Meta's
	// tokenizer.py pat_str is the same expression).
	"llama3": PatternCL100K.Regexp(),
	"o200k":  PatternO200K.Regexp(), "o200k_base": PatternO200K.Regexp(),
	"qwen": qwenRegexp,
}

// PatternNames returns the split-pattern names Options.Pattern accepts.
func PatternNames() []string {
	out := make([]string, 0, len(patternNames))
	for n := range patternNames {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Open returns the built-in encoding or tokenizer file nameOrPath with o
// applied: GetOrLoad, the pattern and specials of a tiktoken rank file, then
// WithEOS and WithBOS.
func Open(nameOrPath string, o Options) (*Tokenizer, error) {
	var t *Tokenizer
	var err error
	switch {
	case o.Pattern == "" && o.Specials == "":
		t, err = GetOrLoad(nameOrPath)
	case IsBuiltin(nameOrPath):
		return nil, fmt.Errorf("tokenize: %s is a built-in encoding with its own pattern and special tokens: --pattern and --specials are for a tiktoken rank file", nameOrPath)
	default:
		t, err = LoadWith(nameOrPath, o)
	}
	if err != nil {
		return nil, err
	}
	if t, err = t.WithEOS(o.EOS); err != nil {
		return nil, err
	}
	return t.WithBOS(o.BOS)
}

// LoadWith is Load with a tiktoken rank file's pattern and special tokens
// (o.EOS and o.BOS are not applied; see Open). Only a tiktoken rank file
// takes a pattern or specials.
func LoadWith(path string, o Options) (*Tokenizer, error) {
	if o.Pattern == "" && o.Specials == "" {
		return Load(path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenize: %w", err)
	}
	if kind := fileKind(path, data); kind != "tiktoken" {
		return nil, fmt.Errorf("tokenize: %s is a %s, which has its own pre-tokenisation and special tokens: --pattern and --specials (recipe: tokenizer: {pattern, specials}) are for a tiktoken rank file", path, kind)
	}
	return loadTiktoken(path, data, o)
}

// fileKind names the format Load reads path as.
func fileKind(path string, data []byte) string {
	base := filepath.Base(path)
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	switch {
	case strings.HasSuffix(base, ".bpe"):
		return "GPT-2 vocab.bpe"
	case len(trimmed) > 0 && trimmed[0] == '{':
		return "JSON tokenizer (tokenizer.json or encoder.json)"
	case looksLikeSentencePiece(data):
		return "SentencePiece model"
	}
	return "tiktoken"
}

// loadTiktoken reads a tiktoken rank file. Without o.Pattern, only a file
// named after a built-in encoding (cl100k_base.tiktoken) is read, with that
// encoding's pattern and specials: any other file does not say how to split
// text, and guessing would give wrong ids without a word.
func loadTiktoken(path string, data []byte, o Options) (*Tokenizer, error) {
	tokens, err := parseTiktoken(data, path)
	if err != nil {
		return nil, err
	}
	base := filepath.Base(path)
	name := strings.TrimSuffix(base, filepath.Ext(base))
	if name == "tokenizer" {
		// Llama 3's tokenizer.model: the directory is the model's name.
		if d := filepath.Base(filepath.Dir(path)); d != "." && d != "/" && d != ".." && d != "original" {
			name = d
		} else if d == "original" {
			name = filepath.Base(filepath.Dir(filepath.Dir(path)))
		}
	}
	if o.name != "" {
		name = o.name
	}
	spec := Spec{Name: name, Pattern: PatternGPT2, Tokens: tokens}
	b, builtinName := builtins[strings.TrimSuffix(base, filepath.Ext(base))]
	if builtinName {
		spec.Pattern, spec.Specials = b.pattern, b.specials
	}
	var bounds hfBoundaries
	if o.Specials != "" {
		sp, b, err := parseSpecials(o.Specials)
		if err != nil {
			return nil, fmt.Errorf("tokenize: %s: --specials: %w", path, err)
		}
		spec.Specials, bounds = sp, b
	}
	if o.specials != nil {
		spec.Specials, bounds = o.specials, o.bounds
	}
	regex := ""
	if o.Pattern != "" {
		regex = o.Pattern
		if r, ok := patternNames[o.Pattern]; ok {
			regex = r
		}
		spec.Pattern = PatternGPT2
		for _, p := range []Pattern{PatternGPT2, PatternCL100K, PatternO200K} {
			if regex == p.Regexp() {
				spec.Pattern, regex = p, ""
			}
		}
	}
	t, err := New(spec)
	if err != nil {
		return nil, err
	}
	if o.Pattern == "" && !builtinName {
		return nil, fmt.Errorf("tokenize: %s is a tiktoken rank file, which does not say how text is split before the merges: give its pattern with --pattern (recipe: tokenizer: {pattern: ...}): a name (%s) or a regular expression",
			path, strings.Join(PatternNames(), ", "))
	}
	t.bounds = bounds
	if o.Pattern != "" || o.Specials != "" || o.specials != nil {
		full := regex
		if full == "" {
			full = spec.Pattern.Regexp()
		}
		t.tt = &ttSource{ranks: data, pattern: full, specials: spec.Specials, bounds: bounds}
	}
	if regex == "" {
		return t, nil
	}
	t.regex = regex
	// A pattern without a Pattern of its own: a hand-written scanner when
	// one exists (Qwen's), else the expression on regexp2. tiktoken encodes
	// only the matches (text no match covers is dropped), which is Split
	// with behaviour Removed, inverted.
	if f, ok := knownSplits[regex]; ok {
		t.split = f
	} else {
		re, err := hfRegex(regex)
		if err != nil {
			return nil, fmt.Errorf("tokenize: %s: --pattern: %w", path, err)
		}
		t.pipe = &pipeline{pre: []preTokenizer{preSplitRegex(re, behRemoved, true)}}
	}
	sum := sha256.Sum256([]byte("smelt-tiktoken-pattern-v1\x00" + regex + "\x00" + t.RanksHash()))
	t.hash = "tt-" + hex.EncodeToString(sum[:])
	return t, nil
}

// parseSpecials reads Options.Specials: an inline list or a file.
func parseSpecials(arg string) (map[string]uint32, hfBoundaries, error) {
	var b hfBoundaries
	data, err := os.ReadFile(arg)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return nil, b, err
		}
		if !strings.Contains(arg, "=") {
			return nil, b, fmt.Errorf("%q is neither a file nor a TOKEN=ID list", arg)
		}
		m := map[string]uint32{}
		for _, item := range strings.Split(arg, ",") {
			eq := strings.LastIndexByte(item, '=')
			if eq <= 0 {
				return nil, b, fmt.Errorf("%q is not TOKEN=ID", item)
			}
			if err := addSpecial(m, item[:eq], item[eq+1:]); err != nil {
				return nil, b, err
			}
		}
		return m, b, nil
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		m, err := specialsJSON(trimmed, &b)
		if err != nil {
			return nil, b, fmt.Errorf("%s: %w", arg, err)
		}
		return m, b, nil
	}
	m := map[string]uint32{}
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sp := strings.LastIndexAny(line, " \t=")
		if sp <= 0 {
			return nil, b, fmt.Errorf("%s: line %d: want \"TOKEN ID\", got %q", arg, n+1, clip([]byte(line)))
		}
		if err := addSpecial(m, line[:sp], line[sp+1:]); err != nil {
			return nil, b, fmt.Errorf("%s: line %d: %w", arg, n+1, err)
		}
	}
	if len(m) == 0 {
		return nil, b, fmt.Errorf("%s: no special tokens", arg)
	}
	return m, b, nil
}

func addSpecial(m map[string]uint32, tok, id string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(id), 10, 32)
	if err != nil || n > 1<<26 {
		return fmt.Errorf("special token %q: bad id %q", tok, id)
	}
	if tok == "" {
		return fmt.Errorf("empty special token (id %d)", n)
	}
	if _, dup := m[tok]; dup {
		return fmt.Errorf("special token %q is given twice", tok)
	}
	m[tok] = uint32(n)
	return nil
}

// specialsJSON reads specials from a JSON object: {"TOKEN": ID}, a
// tokenizer_config.json or a tokenizer.json.
func specialsJSON(data []byte, b *hfBoundaries) (map[string]uint32, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, err
	}
	m := map[string]uint32{}
	switch {
	case top["added_tokens_decoder"] != nil:
		var dec map[string]hfAdded
		if err := json.Unmarshal(top["added_tokens_decoder"], &dec); err != nil {
			return nil, fmt.Errorf("added_tokens_decoder: %w", err)
		}
		for id, a := range dec {
			if !a.Special {
				continue
			}
			if err := addSpecial(m, a.Content, id); err != nil {
				return nil, err
			}
		}
		var c tokenizerConfig
		if json.Unmarshal(data, &c) == nil {
			c.boundaries(b)
		}
	case top["added_tokens"] != nil:
		var list []hfAdded
		if err := json.Unmarshal(top["added_tokens"], &list); err != nil {
			return nil, fmt.Errorf("added_tokens: %w", err)
		}
		for _, a := range list {
			if a.Special {
				if err := addSpecial(m, a.Content, strconv.FormatUint(uint64(a.ID), 10)); err != nil {
					return nil, err
				}
			}
		}
	default:
		for k, raw := range top {
			var id uint32
			if err := json.Unmarshal(raw, &id); err != nil {
				return nil, fmt.Errorf("special token %q: want an id, got %s", k, clip(raw))
			}
			if err := addSpecial(m, k, strconv.FormatUint(uint64(id), 10)); err != nil {
				return nil, err
			}
		}
	}
	if len(m) == 0 {
		return nil, errors.New("no special tokens")
	}
	return m, nil
}
