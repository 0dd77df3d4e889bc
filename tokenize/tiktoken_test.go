package tokenize

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/internal/testutil"
)

// llama3Tiktoken writes Llama 3's tokenizer.model (a tiktoken rank file:
// base64 token bytes and rank, 128,000 lines) from the vocabulary of the
// @lenml Llama 3 tokenizer.json, and returns its path and the tokenizer.json
// tokenizer. The file is 2.2 MB, so it is made here rather than committed.
func llama3Tiktoken(t *testing.T) (string, *Tokenizer) {
	t.Helper()
	hfNode(t) // installs the @lenml files, or skips
	tj := loadHFModel(t, "llama3")
	var sb strings.Builder
	for id := uint32(0); id < 128000; id++ {
		b, ok := tj.TokenBytes(id)
		if !ok {
			t.Fatalf("llama3 id %d has no bytes", id)
		}
		sb.WriteString(base64.StdEncoding.EncodeToString(b))
		sb.WriteByte(' ')
		sb.WriteString(strconv.Itoa(int(id)))
		sb.WriteByte('\n')
	}
	dir := filepath.Join(t.TempDir(), "llama3")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "tokenizer.model")
	if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p, tj
}

// TestTiktokenLlama3 loads Llama 3's tiktoken tokenizer.model with its
// pattern and specials given as options and checks that its ids equal the
// tokenizer.json's (which TestHFReference checks against Hugging Face
// tokenizers) on the hard cases and real documents, and the reference's
// directly when node is there; also with the pattern given as a regular
// expression that only the general (regexp2) path runs.
func TestTiktokenLlama3(t *testing.T) {
	model, tj := llama3Tiktoken(t)
	config := filepath.Join(filepath.Dir(hfPath("llama3")), "tokenizer_config.json")
	n := 300
	if os.Getenv("SMELT_THOROUGH") != "" {
		n = 3000
	} else if raceEnabled {
		n = 60 // the tokenizer.json side of the comparison is checked in full without -race
	}
	texts := append(hardCases(), realDocs(t, n)...)
	texts = append(texts, "<|begin_of_text|>Hi<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nx<|end_of_text|>")

	compare := func(t *testing.T, tok *Tokenizer, texts []string, ref func(int, string) []uint32) {
		t.Helper()
		bad := 0
		for i, text := range texts {
			got, err := tok.Encode(text, AllSpecial, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := ref(i, text)
			if d := firstDiff(got, want); d < len(got) || d < len(want) {
				bad++
				if bad <= 3 {
					t.Errorf("text %d %q: first difference at id %d: got %v want %v", i, clipText(text, d), d, window(got, d), window(want, d))
				}
			}
		}
		if bad > 0 {
			t.Errorf("%d of %d texts differ", bad, len(texts))
		}
	}
	viaJSON := func(_ int, text string) []uint32 {
		ids, err := tj.Encode(text, AllSpecial, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}

	tok, err := Open(model, Options{Pattern: "llama3", Specials: config})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Name() != "llama3" || tok.VocabSize() != 128256 || tok.EOSName() != "<|end_of_text|>" {
		t.Errorf("name %q, vocab %d, eos %q; want llama3, 128256, <|end_of_text|> (the config's eos_token)", tok.Name(), tok.VocabSize(), tok.EOSName())
	}
	if tok.IsPipeline() {
		t.Error("the llama3 pattern should take the hand-written cl100k scanner")
	}
	t.Run("named-pattern", func(t *testing.T) { compare(t, tok, texts, viaJSON) })

	t.Run("regex-pattern", func(t *testing.T) {
		// The same expression in a group: not a known pattern, so regexp2
		// runs it (tiktoken semantics: only matches are encoded).
		re := "(?:" + PatternCL100K.Regexp() + ")"
		rt, err := Open(model, Options{Pattern: re, Specials: "<|begin_of_text|>=128000,<|end_of_text|>=128001"})
		if err != nil {
			t.Fatal(err)
		}
		if !rt.IsPipeline() || rt.RanksHash() == tok.RanksHash() {
			t.Error("a regex pattern should run the general path and hash differently")
		}
		if eot, ok := rt.EOT(); ok {
			t.Errorf("no eos is known from an inline list, got %d", eot)
		}
		if rt, err = rt.WithEOS("<|end_of_text|>"); err != nil {
			t.Fatal(err)
		}
		if eot, _ := rt.EOT(); eot != 128001 {
			t.Errorf("eot %d", eot)
		}
		sub := texts
		if k := map[bool]int{false: 150, true: 60}[raceEnabled]; len(sub) > k {
			sub = sub[:k] // regexp2 is slow, the more so under -race
		}
		compare(t, rt, sub[:len(sub)-1], viaJSON) // the last text has specials outside the inline list
	})

	t.Run("reference", func(t *testing.T) {
		// Transitively checked above (TestHFReference compares the
		// tokenizer.json path with the reference); directly here.
		testutil.Thorough(t)
		node := hfNode(t)
		seen := make([]string, len(texts))
		for i, s := range texts {
			seen[i] = asRunes(s)
		}
		ref := hfRefIDs(t, node, "llama3", seen)
		compare(t, tok, seen, func(i int, _ string) []uint32 { return ref[i] })
	})
}

// TestTiktokenOptionsErrors checks the refusals: no pattern, options for a
// file that is not a tiktoken file, bad specials and patterns.
func TestTiktokenOptionsErrors(t *testing.T) {
	dir := t.TempDir()
	src := mustGet(t, "r50k_base")
	var sb strings.Builder
	for r := uint32(0); r < 50256; r++ {
		s, _ := src.ranks.bytesOf(r)
		sb.WriteString(base64.StdEncoding.EncodeToString([]byte(s)) + " " + strconv.Itoa(int(r)) + "\n")
	}
	tt := filepath.Join(dir, "mine.tiktoken")
	if err := os.WriteFile(tt, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	jsonTok := write("tokenizer.json", `{"model":{"type":"BPE","vocab":{},"merges":[]}}`)
	for _, c := range []struct {
		path string
		o    Options
		want string
	}{
		{tt, Options{}, "give its pattern with --pattern"},
		{tt, Options{Specials: "<eot>=50256"}, "give its pattern with --pattern"},
		{tt, Options{Pattern: "gpt2", Specials: "<eot>"}, "neither a file nor a TOKEN=ID list"},
		{tt, Options{Pattern: "gpt2", Specials: "<eot>=x"}, `bad id "x"`},
		{tt, Options{Pattern: "gpt2", Specials: "<eot>=5"}, "is also an ordinary token"},
		{tt, Options{Pattern: "gpt2", Specials: "<a>=50256,<b>=50256"}, "share id 50256"},
		{tt, Options{Pattern: "gpt2", Specials: write("sp.txt", "<a> 50256\nbroken\n")}, "line 2"},
		{tt, Options{Pattern: "gpt2", Specials: write("sp.json", `{"<a>": "x"}`)}, "want an id"},
		{tt, Options{Pattern: `(?<!`}, "--pattern: regex"},
		{jsonTok, Options{Pattern: "gpt2"}, "are for a tiktoken rank file"},
		{"gpt2", Options{Pattern: "cl100k"}, "built-in encoding"},
	} {
		_, err := Open(c.path, c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %+v: error %v, want %q", filepath.Base(c.path), c.o, err, c.want)
		}
	}
	// The accepted forms of specials give the same tokenizer.
	var hashes []string
	for _, sp := range []string{
		"<|endoftext|>=50256",
		write("sp2.txt", "# comment\n<|endoftext|> 50256\n"),
		write("sp3.json", `{"<|endoftext|>": 50256}`),
		write("tokenizer_config.json", `{"added_tokens_decoder": {"50256": {"content": "<|endoftext|>", "special": true}}, "eos_token": "<|endoftext|>"}`),
		write("added.json", `{"added_tokens": [{"id": 50256, "content": "<|endoftext|>", "special": true}]}`),
	} {
		tok, err := Open(tt, Options{Pattern: "gpt2", Specials: sp})
		if err != nil {
			t.Fatalf("%s: %v", sp, err)
		}
		if eot, ok := tok.EOT(); !ok || eot != 50256 {
			t.Errorf("%s: eot %d %v", sp, eot, ok)
		}
		hashes = append(hashes, tok.RanksHash())
	}
	for _, h := range hashes[1:] {
		if h != hashes[0] || h != src.RanksHash() {
			t.Error("the forms of specials give different tokenizers, or not r50k_base's")
		}
	}
	// Qwen's pattern has a hand-written scanner: its digits are single.
	q, err := Open(tt, Options{Pattern: "qwen"})
	if err != nil {
		t.Fatal(err)
	}
	if got := q.EncodeOrdinary("12345"); len(got) != 5 {
		t.Errorf("qwen pattern: %v, want 5 single digits", got)
	}
}
