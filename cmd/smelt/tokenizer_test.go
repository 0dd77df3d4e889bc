package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/tokenize"
)

func runTokenizerCLI(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&bytes.Buffer{})
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestTokenizerCLI(t *testing.T) {
	dir := t.TempDir()
	text := "Hello world, it's 2024!\n\tIndented <|endoftext|> line\n\n"
	in := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(in, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runTokenizerCLI(t, "", "tokenizer", "encode", "-t", "gpt2", "--allow-special", in)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := tokenize.Get("gpt2")
	ids, _ := tok.Encode(text, tokenize.AllSpecial, nil)
	var want []string
	for _, id := range ids {
		want = append(want, strconv.FormatUint(uint64(id), 10))
	}
	if strings.TrimSpace(out) != strings.Join(want, " ") {
		t.Fatalf("encode printed %q, want %q", out, strings.Join(want, " "))
	}
	back, err := runTokenizerCLI(t, out, "tokenizer", "decode", "-t", "gpt2")
	if err != nil || back != text {
		t.Fatalf("decode: %q, %v", back, err)
	}
	js, err := runTokenizerCLI(t, "", "tokenizer", "encode", "-t", "gpt2", "--json", "--allow-special", in, in)
	if err != nil || strings.Count(js, "[") != 2 {
		t.Fatalf("--json: %q %v", js, err)
	}
	if back, _ := runTokenizerCLI(t, js, "tokenizer", "decode", "-t", "gpt2"); back != text+text {
		t.Fatalf("decode of JSON lines: %q", back)
	}
	if _, err := runTokenizerCLI(t, "", "tokenizer", "encode", "-t", "gpt2", in); err == nil || !strings.Contains(err.Error(), "in.txt") {
		t.Fatalf("disallowed special: %v", err)
	}
	if _, err := runTokenizerCLI(t, "1 2 99999999", "tokenizer", "decode"); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("unknown id: %v", err)
	}

	// train -> info -> encode with the trained file.
	corpus := filepath.Join(dir, "corpus.txt")
	os.WriteFile(corpus, []byte(strings.Repeat("low lower lowest newer newest wider <|endoftext|>\n", 200)), 0o644)
	outJSON := filepath.Join(dir, "sub", "tok.json")
	if _, err := runTokenizerCLI(t, "", "tokenizer", "train", corpus, "--vocab", "270", "--special", "<|endoftext|>", "--out", outJSON); err != nil {
		t.Fatal(err)
	}
	info, err := runTokenizerCLI(t, "", "tokenizer", "info", "-t", outJSON, "--json")
	if err != nil || !strings.Contains(info, `"vocab_size": 270`) {
		t.Fatalf("info: %s %v", info, err)
	}
	enc, err := runTokenizerCLI(t, "", "tokenizer", "encode", "-t", outJSON, "--allow-special", corpus)
	if err != nil || len(strings.Fields(enc)) > 200*50/3 {
		t.Fatalf("encode with trained tokenizer: %d ids, %v", len(strings.Fields(enc)), err)
	}
}
