package tokenize

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// unigramJSON writes a tokenizer.json with a Unigram model made from the
// SentencePiece model uni4k.model (spm_train on the shared data's text; its
// pieces and scores, control pieces as special added tokens), with the
// given normalizer and pre-tokenizer (JSON, "null" for none); withBytes
// appends the 256 <0xXX> pieces and sets byte_fallback.
func unigramJSON(t testing.TB, dir, name, normalizer, preTokenizer string, withBytes bool) string {
	t.Helper()
	src, err := Load(spmModelPath("uni4k"))
	if err != nil {
		t.Fatal(err)
	}
	m := src.pipe.spm
	type added struct {
		ID         int    `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		Lstrip     bool   `json:"lstrip"`
		Rstrip     bool   `json:"rstrip"`
		Normalized bool   `json:"normalized"`
		Special    bool   `json:"special"`
	}
	var adds []added
	var vocab [][2]any
	for i, p := range m.pieces {
		score := float64(m.scores[i])
		if m.types[i] == spControl || m.types[i] == spUnknown {
			adds = append(adds, added{ID: i, Content: p, Special: true})
			score = 0
		}
		vocab = append(vocab, [2]any{p, score})
	}
	if withBytes {
		for c := 0; c < 256; c++ {
			vocab = append(vocab, [2]any{fmt.Sprintf("<0x%02X>", c), 0.0})
		}
	}
	doc := map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": adds,
		"normalizer": json.RawMessage(normalizer), "pre_tokenizer": json.RawMessage(preTokenizer),
		"post_processor": nil,
		"decoder":        json.RawMessage(`{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}`),
		"model":          map[string]any{"type": "Unigram", "unk_id": int(m.unk), "vocab": vocab, "byte_fallback": withBytes},
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

// TestHFUnigramReference compares smelt's ids on Unigram tokenizer.json
// files with Hugging Face tokenizers': the hard cases and 300 real
// documents (5,000 in the thoroughness run) on a file as the library's
// SentencePiece conversion lays one out (Metaspace, split), and the hard
// cases and 100 documents on variants (an NFKC normalizer with
// byte_fallback pieces and Metaspace prepend_scheme first without split;
// Lowercase and WhitespaceSplit).
func TestHFUnigramReference(t *testing.T) {
	node := hfNode(t)
	dir := t.TempDir()
	n := 300
	if os.Getenv("SMELT_THOROUGH") != "" {
		n = 5000
	} else if raceEnabled {
		n = 100
	}
	docs := realDocs(t, n)
	variants := []struct {
		name, norm, pre string
		bytes           bool
		docs            int
	}{
		{"spm", `null`, `{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}`, false, n},
		{"nfkc-bytes", `{"type":"NFKC"}`, `{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":false}`, true, 100},
		{"lower-ws", `{"type":"Sequence","normalizers":[{"type":"Lowercase"},{"type":"Strip","strip_left":true,"strip_right":true}]}`,
			`{"type":"Sequence","pretokenizers":[{"type":"WhitespaceSplit"},{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}]}`, false, 100},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			path := unigramJSON(t, dir, v.name, v.norm, v.pre, v.bytes)
			tok, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			k := v.docs
			if raceEnabled {
				k = min(k, 40)
			}
			texts := append(hardCases(), docs[:min(k, len(docs))]...)
			for i, s := range texts {
				texts[i] = asRunes(s)
			}
			ref := hfRefIDsAt(t, node, path, texts)
			bad, unk := 0, 0
			for i, text := range texts {
				got, err := tok.Encode(text, AllSpecial, nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, id := range ref[i] {
					if id == 0 {
						unk++
					}
				}
				if d := firstDiff(got, ref[i]); d < len(got) || d < len(ref[i]) {
					bad++
					if bad <= 3 {
						t.Errorf("text %d %q: first difference at id %d:\n got %v\nwant %v", i, clipText(text, d), d, window(got, d), window(ref[i], d))
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d texts differ from Hugging Face tokenizers", bad, len(texts))
			}
			t.Logf("%d texts, %d unknown ids in the reference's output", len(texts), unk)
		})
	}
}

// TestUnigramHandBuilt pins the model's rules on a small vocabulary: the
// best path, a tie kept by the first path found, unknown runs fused (and
// their bytes with byte_fallback), and decode.
func TestUnigramHandBuilt(t *testing.T) {
	dir := t.TempDir()
	write := func(vocab string, byteFallback bool) *Tokenizer {
		t.Helper()
		p := filepath.Join(dir, "u.json")
		j := `{"added_tokens":[],"pre_tokenizer":{"type":"Metaspace","replacement":"▁","prepend_scheme":"never","split":false},
			"decoder":{"type":"Sequence","decoders":[{"type":"ByteFallback"},{"type":"Metaspace","replacement":"▁"}]},
			"model":{"type":"Unigram","unk_id":0,"byte_fallback":` + fmt.Sprint(byteFallback) + `,"vocab":` + vocab + `}}`
		if err := os.WriteFile(p, []byte(j), 0o644); err != nil {
			t.Fatal(err)
		}
		tok, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// The tokenizers library's own example: abcd a cd xx (unknown x fused).
	tok := write(`[["<unk>",0],["a",0],["b",0],["c",0],["d",0],["cd",1],["ab",2],["abc",5],["abcd",10]]`, false)
	if got := tok.EncodeOrdinary("abcdacdxx"); fmt.Sprint(got) != "[8 1 5 0]" {
		t.Errorf("abcdacdxx: %v, want [8 1 5 0]", got)
	}
	// Equal scores: a+bc and ab+c are both -2; a+bc reaches the end first
	// (from position 1), and ab+c (from position 2) does not replace it.
	tok = write(`[["<unk>",-5],["a",-1],["b",-1],["c",-1],["ab",-1],["bc",-1]]`, false)
	if got := tok.EncodeOrdinary("abc"); fmt.Sprint(got) != "[1 5]" {
		t.Errorf("abc tie: %v, want [1 5] (a bc, the first best path)", got)
	}
	var vocab strings.Builder
	vocab.WriteString(`[["<unk>",0],["a",-1]`)
	for c := 0; c < 256; c++ {
		fmt.Fprintf(&vocab, `,["<0x%02X>",0]`, c)
	}
	vocab.WriteString("]")
	tok = write(vocab.String(), true)
	// "é" is two bytes, "☃" three: one fused unknown run, five byte pieces.
	got := tok.EncodeOrdinary("aé☃a")
	want := []uint32{1, 2 + 0xC3, 2 + 0xA9, 2 + 0xE2, 2 + 0x98, 2 + 0x83, 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("byte fallback: %v, want %v", got, want)
	}
	if b, err := tok.Decode(got); err != nil || string(b) != "aé☃a" {
		t.Errorf("decode %q %v", b, err)
	}
}
