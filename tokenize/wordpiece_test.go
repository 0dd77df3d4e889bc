package tokenize

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/smelt-dev/smelt/internal/testutil"
)

// wordPieceJSON writes a BERT-style tokenizer.json whose WordPiece vocabulary
// is made from real text (the binding has no WordPiece trainer): the five
// BERT specials, every character seen twice (bare and continued), the 3,000
// commonest words and the 2,000 commonest word endings of 2 to 5 characters
// as continuations, in the given case, with prefix as the continuing
// subword prefix.
func wordPieceJSON(t testing.TB, dir, name string, docs []string, lower bool, prefix, normalizer, preTokenizer string, maxChars int) string {
	t.Helper()
	words, chars, ends := map[string]int{}, map[string]int{}, map[string]int{}
	for _, d := range docs {
		if lower {
			d = strings.ToLower(d)
		}
		for _, r := range d {
			if !unicode.IsSpace(r) {
				chars[string(r)]++
			}
		}
		for _, w := range strings.FieldsFunc(d, func(r rune) bool { return unicode.IsSpace(r) || isPunct(r) }) {
			words[w]++
			rs := []rune(w)
			for k := 2; k <= 5 && k < len(rs); k++ {
				ends[string(rs[len(rs)-k:])]++
			}
		}
	}
	top := func(m map[string]int, n, atLeast int) []string {
		var ks []string
		for k, c := range m {
			if c >= atLeast {
				ks = append(ks, k)
			}
		}
		sort.Slice(ks, func(i, j int) bool {
			if m[ks[i]] != m[ks[j]] {
				return m[ks[i]] > m[ks[j]]
			}
			return ks[i] < ks[j]
		})
		return ks[:min(n, len(ks))]
	}
	vocab := map[string]int{}
	add := func(s string) {
		if _, ok := vocab[s]; !ok {
			vocab[s] = len(vocab)
		}
	}
	for _, s := range []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"} {
		add(s)
	}
	for _, c := range top(chars, 1<<30, 2) {
		add(c)
		add(prefix + c)
	}
	for _, w := range top(words, 3000, 1) {
		add(w)
	}
	for _, e := range top(ends, 2000, 1) {
		add(prefix + e)
	}
	var adds []map[string]any
	for i, s := range []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"} {
		adds = append(adds, map[string]any{"id": i, "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})
	}
	doc := map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": adds,
		"normalizer": json.RawMessage(normalizer), "pre_tokenizer": json.RawMessage(preTokenizer),
		"post_processor": nil, "decoder": json.RawMessage(`{"type":"WordPiece","prefix":"` + prefix + `","cleanup":true}`),
		"model": map[string]any{"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": prefix,
			"max_input_chars_per_word": maxChars, "vocab": vocab},
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".json")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHFWordPieceReference compares smelt's ids on WordPiece tokenizer.json
// files with Hugging Face tokenizers': BERT uncased as the library lays it
// out (BertNormalizer with lowercase and accents stripped, BertPreTokenizer,
// "##", 100 chars), and a cased variant (no CJK spacing, accents stripped by
// flag, Whitespace and Digits pre-tokenizers, prefix "@@", words over 12
// chars unknown); the hard cases, the charsmap cases and 300 real documents
// (5,000 in the thoroughness run, 40 under -race) that the vocabulary was not
// made from.
func TestHFWordPieceReference(t *testing.T) {
	node := hfNode(t)
	dir := t.TempDir()
	n := 300
	if os.Getenv("SMELT_THOROUGH") != "" {
		n = 5000
	} else if raceEnabled {
		n = 40
	}
	// Every third document makes the vocabulary; the others are encoded.
	var train, test []string
	for i, d := range realDocs(t, n+n/2) {
		if i%3 == 0 {
			train = append(train, d)
		} else {
			test = append(test, d)
		}
	}
	variants := []struct {
		name, prefix, norm, pre string
		lower                   bool
		maxChars                int
	}{
		{"bert-uncased", "##", `{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true}`,
			`{"type":"BertPreTokenizer"}`, true, 100},
		{"cased", "@@", `{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":false,"strip_accents":true,"lowercase":false}`,
			`{"type":"Sequence","pretokenizers":[{"type":"Whitespace"},{"type":"Digits","individual_digits":true}]}`, false, 12},
	}
	if raceEnabled {
		variants = variants[:1] // the race detector's time: one file
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			path := wordPieceJSON(t, dir, v.name, train, v.lower, v.prefix, v.norm, v.pre, v.maxChars)
			tok, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			texts := append(append(hardCases(), precompiledCases()...), "[CLS] a [SEP] [MASK]x", strings.Repeat("ab", 60))
			texts = append(texts, test...)
			for i, s := range texts {
				texts[i] = asRunes(s)
			}
			ref := hfRefIDsAt(t, node, path, texts)
			bad, unk, total := 0, 0, 0
			for i, text := range texts {
				got, err := tok.Encode(text, AllSpecial, nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, id := range ref[i] {
					total++
					if id == 1 {
						unk++
					}
				}
				if d := firstDiff(got, ref[i]); d < len(got) || d < len(ref[i]) {
					bad++
					if bad <= 5 {
						t.Errorf("text %d %q: first difference at id %d:\n got %v\nwant %v", i, clipText(text, d), d, window(got, d), window(ref[i], d))
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d texts differ from Hugging Face tokenizers", bad, len(texts))
			}
			t.Logf("%d texts, %d ids, %d of them [UNK] in the reference's output", len(texts), total, unk)
		})
	}
}

// TestBertUnicodeSweep encodes every code point between two letters with a
// BERT-uncased tokenizer.json (BertNormalizer with every step on,
// BertPreTokenizer, a WordPiece vocabulary of x, y and their continuations)
// in smelt and in Hugging Face tokenizers: clean_text, the CJK spacing,
// strip_accents and the punctuation split must classify each one alike
// (bertunicode.go holds where the library's Unicode tables differ from
// Go's). 1.1 million texts: the thoroughness run only.
func TestBertUnicodeSweep(t *testing.T) {
	testutil.Thorough(t)
	node := hfNode(t)
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	j := `{"added_tokens":[],"normalizer":{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true},` +
		`"pre_tokenizer":{"type":"BertPreTokenizer"},"model":{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##",` +
		`"max_input_chars_per_word":100,"vocab":{"[UNK]":0,"x":1,"##y":2,"y":3,"##x":4}}}`
	if err := os.WriteFile(path, []byte(j), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for r := rune(1); r <= unicode.MaxRune; r++ {
		if utf8.ValidRune(r) {
			texts = append(texts, "x"+string(r)+"y")
		}
	}
	ref := hfRefIDsAt(t, node, path, texts)
	bad := 0
	for i, s := range texts {
		got, err := tok.Encode(s, AllSpecial, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, ref[i]) {
			if bad++; bad <= 10 {
				r, _ := utf8.DecodeRuneInString(s[1:])
				t.Errorf("%U: got %v, reference %v", r, got, ref[i])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d code points differ", bad, len(texts))
	}
}

// TestWordPieceHandBuilt pins the model's rules on a small vocabulary:
// longest entry first, continuations with the prefix, a word with an
// uncovered rest unknown as a whole, a word over max_input_chars_per_word
// unknown, and decode.
func TestWordPieceHandBuilt(t *testing.T) {
	p := filepath.Join(t.TempDir(), "wp.json")
	j := `{"added_tokens":[],"pre_tokenizer":{"type":"BertPreTokenizer"},
		"model":{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":8,
		"vocab":{"[UNK]":0,"un":1,"unaff":2,"##aff":3,"##able":4,"##a":5,"##ble":6,"a":7,"!":8,"##ffable":9}}}`
	if err := os.WriteFile(p, []byte(j), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"unaffable":  "[0]",     // 9 chars > 8
		"unaffabl":   "[0]",     // unaff + "abl": no ##abl, ##ab, ##a then "bl" uncovered
		"unable!":    "[1 4 8]", // un ##able, then "!" split off
		"a unaff":    "[7 2]",
		"unaffa":     "[2 5]",
		"unable unx": "[1 4 0]",
	} {
		if got := fmt.Sprint(tok.EncodeOrdinary(in)); got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
	if b, err := tok.Decode([]uint32{1, 4, 8, 7}); err != nil || string(b) != " unable ! a" {
		t.Errorf("decode: %q %v", b, err)
	}
}
