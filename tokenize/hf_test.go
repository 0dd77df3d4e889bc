package tokenize

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeVariant writes the tokenizer.json of model with top-level keys
// replaced (a JSON value per key) into a temp dir.
func writeVariant(t *testing.T, model string, repl map[string]string) string {
	t.Helper()
	data, err := os.ReadFile(hfPath(model))
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatal(err)
	}
	for k, v := range repl {
		top[k] = json.RawMessage(v)
	}
	out, err := json.Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestHFRefusals(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bytesVocab := func() string {
		var b strings.Builder
		b.WriteString("{")
		for i, c := range byteOrder {
			if i > 0 {
				b.WriteString(",")
			}
			k, _ := json.Marshal(ByteLevelString([]byte{c}))
			b.Write(k)
			b.WriteString(":")
			b.WriteString(strings.TrimSpace(strings.Repeat(" ", 0)) + itoa(i))
		}
		b.WriteString("}")
		return b.String()
	}()
	bl := `{"type":"ByteLevel","add_prefix_space":false,"use_regex":true}`
	cases := []struct{ name, content, want string }{
		{"unigram.json", `{"model":{"type":"Unigram","vocab":[["a",-1.0]]}}`, `Unigram model without unk_id is not supported`},
		{"unigram2.json", `{"model":{"type":"Unigram","vocab":[["a",-1.0]],"unk_id":3}}`, `unk_id 3 is not in the vocabulary`},
		{"unigram3.json", `{"model":{"type":"Unigram","vocab":{"a":1},"unk_id":0}}`, `want [[piece, score], ...]`},
		{"wordlevel.json", `{"model":{"type":"WordLevel","vocab":{"a":0}}}`, `model type "WordLevel" is not supported`},
		{"scripts.json", `{"pre_tokenizer":{"type":"UnicodeScripts"},"model":{"type":"BPE","vocab":` + bytesVocab + `,"merges":[]}}`,
			`pre_tokenizer type "UnicodeScripts" is not supported`},
		{"stripacc.json", `{"normalizer":{"type":"StripAccents"},"pre_tokenizer":` + bl + `,"model":{"type":"BPE","vocab":` + bytesVocab + `,"merges":[]}}`,
			`normalizer type "StripAccents" is not supported`},
		{"precompiled.json", `{"normalizer":{"type":"Precompiled","precompiled_charsmap":"AAEC"},"pre_tokenizer":` + bl + `,"model":{"type":"BPE","vocab":` + bytesVocab + `,"merges":[]}}`,
			`normalizer Precompiled: charsmap`},
		{"wpmerges.json", `{"model":{"type":"WordPiece","vocab":{"[UNK]":0},"merges":["a b"]}}`, `WordPiece model with merges`},
		{"badmerge.json", `{"pre_tokenizer":` + bl + `,"model":{"type":"BPE","vocab":` + bytesVocab + `,"merges":["a b c"]}}`,
			`not two space-separated tokens`},
		{"badjson.json", `{"model":{"type":"BPE","vocab":{"a":0,}}}`, `byte offset`},
		{"tokenizer.model", "\x0a\x0e\x0a\x05<unk>\x15\x00", `SentencePiece model: field 1 claims 14 bytes`},
	}
	for _, c := range cases {
		_, err := Load(write(c.name, c.content))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s: got %v, want an error naming the file and %q", c.name, err, c.want)
		}
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestHFComponents swaps other normalizers, pre-tokenizers and added
// tokens into real tokenizer.json files and compares with the reference.
func TestHFComponents(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	node := hfNode(t)
	texts := append(hardCases()[:45], "The year 2024: café, NAÏVE résumé — ＡＢＣ① x²!!  ...   end.\n\tTabs & <b>tags</b>")
	variants := []struct {
		model string
		repl  map[string]string
	}{
		{"llama2", map[string]string{"normalizer": `{"type":"Sequence","normalizers":[{"type":"NFKC"},{"type":"Lowercase"},{"type":"Strip","strip_left":true,"strip_right":true}]}`,
			"pre_tokenizer": `{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},{"type":"Punctuation","behavior":"Isolated"},{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}]}`}},
		{"llama2", map[string]string{"normalizer": `{"type":"NFD"}`,
			"pre_tokenizer": `{"type":"Sequence","pretokenizers":[{"type":"WhitespaceSplit"},{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":false}]}`}},
		{"llama2", map[string]string{"normalizer": `{"type":"Replace","pattern":{"Regex":"\\s+"},"content":"▁"}`,
			"pre_tokenizer": `{"type":"Split","pattern":{"Regex":"(?i:the|and)|\\p{N}+(?=\\p{L})"},"behavior":"MergedWithNext","invert":false}`}},
		{"llama2", map[string]string{"normalizer": `null`,
			"pre_tokenizer": `{"type":"Sequence","pretokenizers":[{"type":"Whitespace"},{"type":"Digits","individual_digits":false},{"type":"Split","pattern":{"String":"e"},"behavior":"Contiguous","invert":true}]}`}},
		{"llama2", map[string]string{"normalizer": `{"type":"NFKD"}`,
			"pre_tokenizer": `{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\s+(?!\\S)|[.,!?]"},"behavior":"Removed","invert":false},{"type":"Split","pattern":{"String":"a"},"behavior":"MergedWithPrevious","invert":false}]}`,
			"added_tokens": `[{"id":0,"content":"<unk>","special":true,"lstrip":false,"rstrip":false,"normalized":false,"single_word":false},` +
				`{"id":1,"content":"<s>","special":true,"lstrip":false,"rstrip":false,"normalized":false,"single_word":false},` +
				`{"id":2,"content":"</s>","special":true,"lstrip":false,"rstrip":false,"normalized":false,"single_word":false},` +
				`{"id":32000,"content":"  ","special":false,"lstrip":false,"rstrip":false,"normalized":false,"single_word":false},` +
				`{"id":32001,"content":"end","special":false,"lstrip":true,"rstrip":true,"normalized":false,"single_word":false},` +
				`{"id":32002,"content":"tabs","special":false,"lstrip":false,"rstrip":false,"normalized":true,"single_word":false},` +
				`{"id":32003,"content":"is","special":false,"lstrip":false,"rstrip":false,"normalized":false,"single_word":true}]`}},
		{"qwen3", map[string]string{"normalizer": `{"type":"NFKC"}`,
			"pre_tokenizer": `{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true}`}},
	}
	for i, v := range variants {
		path := writeVariant(t, v.model, v.repl)
		tok, err := Load(path)
		if err != nil {
			t.Fatalf("variant %d: %v", i, err)
		}
		ref := hfRefIDsAt(t, node, path, texts)
		bad := 0
		for j, text := range texts {
			seen := asRunes(text)
			got, err := tok.Encode(seen, AllSpecial, nil)
			if err != nil {
				t.Fatal(err)
			}
			if d := firstDiff(got, ref[j]); d < len(got) || d < len(ref[j]) {
				bad++
				if bad <= 2 {
					t.Errorf("variant %d text %d %q: at %d got %v want %v", i, j, clipText(seen, 0), d, window(got, d), window(ref[j], d))
				}
			}
		}
		if bad > 0 {
			t.Errorf("variant %d (%s %v): %d of %d texts differ", i, v.model, v.repl, bad, len(texts))
		}
	}
}

// TestHFConcurrent encodes from several goroutines at once (the word cache
// is shared) and checks the ids equal a serial run's.
func TestHFConcurrent(t *testing.T) {
	hfNode(t)
	tok := loadHFModel(t, "llama2")
	texts := hardCases()
	want := make([][]uint32, len(texts))
	for i, s := range texts {
		want[i] = tok.EncodeOrdinary(s)
	}
	errs := make(chan string, 4)
	for g := 0; g < 4; g++ {
		go func(g int) {
			for r := 0; r < 3; r++ {
				for i := range texts {
					j := (i + g*7) % len(texts)
					if got := tok.EncodeOrdinary(texts[j]); firstDiff(got, want[j]) != len(want[j]) || len(got) != len(want[j]) {
						errs <- texts[j]
						return
					}
				}
			}
			errs <- ""
		}(g)
	}
	for g := 0; g < 4; g++ {
		if s := <-errs; s != "" {
			t.Errorf("concurrent encoding of %q differs from serial", clipText(s, 0))
		}
	}
}
