package tokenize

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/pkoukk/tiktoken-go-loader/assets"
)

// builtin describes a tiktoken encoding shipped in the binary. The rank
// files come from the github.com/pkoukk/tiktoken-go-loader module, which
// embeds them with go:embed, so nothing is ever downloaded.
type builtin struct {
	file     string
	pattern  Pattern
	specials map[string]uint32
}

var builtins = map[string]builtin{
	"r50k_base": {"r50k_base.tiktoken", PatternGPT2, map[string]uint32{EndOfText: 50256}},
	"p50k_base": {"p50k_base.tiktoken", PatternGPT2, map[string]uint32{EndOfText: 50256}},
	"cl100k_base": {"cl100k_base.tiktoken", PatternCL100K, map[string]uint32{
		EndOfText: 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
		"<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}},
	"o200k_base": {"o200k_base.tiktoken", PatternO200K, map[string]uint32{
		EndOfText: 199999, "<|endofprompt|>": 200018}},
}

var aliases = map[string]string{"gpt2": "r50k_base", "r50k": "r50k_base", "p50k": "p50k_base",
	"cl100k": "cl100k_base", "o200k": "o200k_base"}

var (
	builtinMu    sync.Mutex
	builtinCache = map[string]*Tokenizer{}
)

// Names returns the built-in encoding names.
func Names() []string {
	names := make([]string, 0, len(builtins))
	for n := range builtins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// IsBuiltin reports whether name is a built-in encoding or alias.
func IsBuiltin(name string) bool {
	if _, ok := builtins[name]; ok {
		return true
	}
	_, ok := aliases[name]
	return ok
}

// Get returns a built-in encoding: "r50k_base" (alias "gpt2"), "p50k_base",
// "cl100k_base" or "o200k_base". Tokenizers are built once and shared.
func Get(name string) (*Tokenizer, error) {
	canon := name
	if a, ok := aliases[name]; ok {
		canon = a
	}
	b, ok := builtins[canon]
	if !ok {
		return nil, fmt.Errorf("tokenize: unknown encoding %q (built-ins: %s)", name, strings.Join(Names(), ", "))
	}
	builtinMu.Lock()
	defer builtinMu.Unlock()
	if t := builtinCache[canon]; t != nil {
		return t, nil
	}
	data, err := assets.Assets.ReadFile(b.file)
	if err != nil {
		return nil, fmt.Errorf("tokenize: embedded %s: %w", b.file, err)
	}
	tokens, err := parseTiktoken(data, b.file)
	if err != nil {
		return nil, err
	}
	t, err := New(Spec{Name: canon, Pattern: b.pattern, Tokens: tokens, Specials: b.specials})
	if err != nil {
		return nil, err
	}
	// RanksHash hashes every token (4.5 ms for GPT-2's 50,257) each time it
	// is asked unless the hash is set; a built-in never changes after this.
	t.hash = t.RanksHash()
	builtinCache[canon] = t
	return t, nil
}

// GetOrLoad returns the built-in encoding nameOrPath if it is one, else the
// tokenizer in the file nameOrPath.
func GetOrLoad(nameOrPath string) (*Tokenizer, error) {
	if IsBuiltin(nameOrPath) {
		return Get(nameOrPath)
	}
	if _, err := os.Stat(nameOrPath); errors.Is(err, os.ErrNotExist) {
		return nil, UnknownError(nameOrPath)
	}
	return Load(nameOrPath)
}

// UnknownError says that name is neither a built-in encoding nor a file,
// listing the built-in names (a typo such as gpt7 is the usual cause).
func UnknownError(name string) error {
	return fmt.Errorf("tokenize: unknown tokenizer %q: not a built-in encoding (%s) nor an existing tokenizer file", name, strings.Join(BuiltinNames(), ", "))
}

// BuiltinNames returns the built-in encoding names and their aliases, sorted.
func BuiltinNames() []string {
	names := Names()
	for a := range aliases {
		names = append(names, a)
	}
	sort.Strings(names)
	return names
}

// Load reads a tokenizer file: a tiktoken rank file named after a built-in
// encoding (cl100k_base.tiktoken: its pattern and special tokens; any other
// tiktoken file needs LoadWith's pattern), a GPT-2 encoder.json with vocab.bpe beside it
// (or vocab.bpe with encoder.json beside it), or a Hugging Face
// tokenizer.json with a byte-level BPE model (as Train writes).
func Load(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenize: %w", err)
	}
	base := filepath.Base(path)
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	switch {
	case strings.HasSuffix(base, ".bpe"):
		enc := filepath.Join(filepath.Dir(path), "encoder.json")
		if strings.HasSuffix(base, "_vocab.bpe") {
			enc = filepath.Join(filepath.Dir(path), strings.TrimSuffix(base, "vocab.bpe")+"encoder.json")
		}
		return loadGPT2(enc, path)
	case len(trimmed) > 0 && trimmed[0] == '{':
		// A tokenizer.json has a "model" object; a GPT-2 encoder.json maps
		// token strings (one of which is "model") to numbers.
		top, err := topLevel(data)
		if err != nil {
			return nil, fmt.Errorf("tokenize: %s: %w", path, err)
		}
		if m := top["model"]; len(m) > 0 && m[0] == '{' {
			return loadHF(path, data, top)
		}
		if _, ok := top[bundleKey]; ok {
			return loadBundle(path, data)
		}
		bpe := filepath.Join(filepath.Dir(path), "vocab.bpe")
		if strings.HasSuffix(base, "_encoder.json") {
			bpe = filepath.Join(filepath.Dir(path), strings.TrimSuffix(base, "encoder.json")+"vocab.bpe")
		}
		return loadGPT2(path, bpe)
	default:
		if looksLikeSentencePiece(data) {
			return loadSentencePiece(path, data)
		}
		return loadTiktoken(path, data, Options{})
	}
}

// looksLikeSentencePiece reports a SentencePiece ModelProto: it starts with
// field 1 (pieces, length-delimited: tag 0x0a), whose first piece is a
// message starting with field 1 (the piece string, tag 0x0a) — bytes no
// tiktoken file (base64 text) starts with.
func looksLikeSentencePiece(data []byte) bool {
	if len(data) < 4 || data[0] != 0x0a {
		return false
	}
	// Skip the varint length of the first piece.
	i := 1
	for i < len(data) && i < 6 && data[i]&0x80 != 0 {
		i++
	}
	return i+1 < len(data) && data[i+1] == 0x0a
}

// parseTiktoken parses "base64 rank" lines into tokens indexed by rank.
func parseTiktoken(data []byte, path string) ([]string, error) {
	var tokens []string
	off := 0
	for len(data) > 0 {
		line := data
		next := len(data)
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, next = data[:i], i+1
		}
		lineOff := off
		data = data[next:]
		off += next
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			continue
		}
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 {
			return nil, fmt.Errorf("tokenize: %s: byte offset %d: want \"base64 rank\", got %q", path, lineOff, clip(line))
		}
		tok, err := base64.StdEncoding.DecodeString(string(line[:sp]))
		if err != nil {
			return nil, fmt.Errorf("tokenize: %s: byte offset %d: %w", path, lineOff, err)
		}
		rank, err := strconv.ParseUint(string(line[sp+1:]), 10, 32)
		if err != nil || rank > 1<<24 {
			return nil, fmt.Errorf("tokenize: %s: byte offset %d: bad rank %q", path, lineOff, clip(line[sp+1:]))
		}
		if len(tok) == 0 {
			return nil, fmt.Errorf("tokenize: %s: byte offset %d: empty token", path, lineOff)
		}
		for int(rank) >= len(tokens) {
			tokens = append(tokens, "")
		}
		if tokens[rank] != "" {
			return nil, fmt.Errorf("tokenize: %s: byte offset %d: rank %d appears twice", path, lineOff, rank)
		}
		tokens[rank] = string(tok)
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("tokenize: %s: no ranks", path)
	}
	return tokens, nil
}

func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// byteEncoder and byteDecoder are GPT-2's bytes_to_unicode mapping: every
// byte is shown as a printable rune in encoder.json, vocab.bpe and
// tokenizer.json.
var byteEncoder, byteDecoder = func() ([256]rune, map[rune]byte) {
	var enc [256]rune
	dec := make(map[rune]byte, 256)
	n := 0
	for b := 0; b < 256; b++ {
		if ('!' <= b && b <= '~') || (0xA1 <= b && b <= 0xAC) || (0xAE <= b && b <= 0xFF) {
			enc[b] = rune(b)
		} else {
			enc[b] = rune(256 + n)
			n++
		}
		dec[enc[b]] = byte(b)
	}
	return enc, dec
}()

// byteOrder is GPT-2's order of the 256 byte tokens (printable ones first).
var byteOrder = func() []byte {
	var out []byte
	for pass := 0; pass < 2; pass++ {
		for b := 0; b < 256; b++ {
			printable := byteEncoder[b] == rune(b)
			if printable == (pass == 0) {
				out = append(out, byte(b))
			}
		}
	}
	return out
}()

// ByteLevelString shows token bytes as GPT-2's byte-level unicode string.
func ByteLevelString(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		sb.WriteRune(byteEncoder[c])
	}
	return sb.String()
}

// ParseByteLevel is the inverse of ByteLevelString.
func ParseByteLevel(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		b, ok := byteDecoder[r]
		if !ok {
			return nil, fmt.Errorf("rune %q is not in the byte-level alphabet", r)
		}
		out = append(out, b)
	}
	return out, nil
}

// buildFromMerges assigns ranks the way tiktoken converts GPT-2 files: the
// single-byte tokens first, then each merge's result in merge order, then any
// other vocabulary entries. vocab maps token bytes to id.
func buildFromMerges(name string, pattern Pattern, vocab map[string]uint32, merges [][2]string, specials map[string]uint32) (*Tokenizer, error) {
	var tokens []string
	var ids []uint32
	ranked := make(map[string]bool, len(vocab))
	add := func(s string) {
		tokens = append(tokens, s)
		ids = append(ids, vocab[s])
		ranked[s] = true
	}
	var singles []string
	for s := range vocab {
		if len(s) == 1 {
			singles = append(singles, s)
		}
	}
	sort.Slice(singles, func(i, j int) bool { return vocab[singles[i]] < vocab[singles[j]] })
	for _, s := range singles {
		add(s)
	}
	for i, m := range merges {
		s := m[0] + m[1]
		if _, ok := vocab[m[0]]; !ok {
			return nil, fmt.Errorf("tokenize: %s: merge %d: %q is not in the vocabulary", name, i, m[0])
		}
		if _, ok := vocab[m[1]]; !ok {
			return nil, fmt.Errorf("tokenize: %s: merge %d: %q is not in the vocabulary", name, i, m[1])
		}
		if _, ok := vocab[s]; !ok {
			return nil, fmt.Errorf("tokenize: %s: merge %d: result %q is not in the vocabulary", name, i, s)
		}
		if !ranked[s] {
			add(s)
		}
	}
	var rest []string
	for s := range vocab {
		if !ranked[s] {
			rest = append(rest, s)
		}
	}
	sort.Slice(rest, func(i, j int) bool { return vocab[rest[i]] < vocab[rest[j]] })
	for _, s := range rest {
		add(s)
	}
	identity := true
	for r, id := range ids {
		if uint32(r) != id {
			identity = false
			break
		}
	}
	spec := Spec{Name: name, Pattern: pattern, Tokens: tokens, Specials: specials}
	if !identity {
		spec.IDs = ids
	}
	return New(spec)
}

func loadGPT2(encoderPath, bpePath string) (*Tokenizer, error) {
	encData, err := os.ReadFile(encoderPath)
	if err != nil {
		return nil, fmt.Errorf("tokenize: GPT-2 vocabulary needs encoder.json beside vocab.bpe: %w", err)
	}
	bpeData, err := os.ReadFile(bpePath)
	if err != nil {
		return nil, fmt.Errorf("tokenize: GPT-2 vocabulary needs vocab.bpe beside encoder.json: %w", err)
	}
	var enc map[string]uint32
	if err := json.Unmarshal(encData, &enc); err != nil {
		return nil, jsonError(encoderPath, err)
	}
	merges, err := parseMerges(bpeData, bpePath)
	if err != nil {
		return nil, err
	}
	results := make(map[string]bool, len(merges))
	for _, m := range merges {
		results[m[0]+m[1]] = true
	}
	vocab := make(map[string]uint32, len(enc))
	specials := map[string]uint32{}
	for k, id := range enc {
		b, err := ParseByteLevel(k)
		if err != nil || (len(b) > 1 && !results[string(b)]) {
			// Entries such as <|endoftext|> are neither bytes nor merges.
			specials[k] = id
			continue
		}
		vocab[string(b)] = id
	}
	name := strings.TrimSuffix(filepath.Base(encoderPath), ".json")
	return buildFromMerges(name, PatternGPT2, vocab, merges, specials)
}

// parseMerges reads vocab.bpe / merges.txt lines "a b" in byte-level form,
// skipping a "#version" header.
func parseMerges(data []byte, path string) ([][2]string, error) {
	var merges [][2]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	off := 0
	for sc.Scan() {
		line := sc.Text()
		lineOff := off
		off += len(line) + 1
		if strings.HasPrefix(line, "#version") || strings.TrimSpace(line) == "" {
			continue
		}
		m, err := parseMergeLine(line)
		if err != nil {
			return nil, fmt.Errorf("tokenize: %s: byte offset %d: %w", path, lineOff, err)
		}
		merges = append(merges, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokenize: %s: %w", path, err)
	}
	return merges, nil
}

func parseMergeLine(line string) ([2]string, error) {
	parts := strings.Split(strings.TrimRight(line, "\r"), " ")
	if len(parts) != 2 {
		return [2]string{}, fmt.Errorf("merge %q is not two space-separated tokens", line)
	}
	return parseMergePair(parts[0], parts[1])
}

func parseMergePair(a, b string) ([2]string, error) {
	x, err := ParseByteLevel(a)
	if err != nil {
		return [2]string{}, err
	}
	y, err := ParseByteLevel(b)
	if err != nil {
		return [2]string{}, err
	}
	return [2]string{string(x), string(y)}, nil
}

// jsonError names the file and, when encoding/json knows it, the byte offset.
func jsonError(path string, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("tokenize: %s: byte offset %d: %w", path, se.Offset, err)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("tokenize: %s: byte offset %d: %w", path, te.Offset, err)
	}
	return fmt.Errorf("tokenize: %s: %w", path, err)
}
