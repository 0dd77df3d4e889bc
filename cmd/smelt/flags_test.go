package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestShardMBRejected: every verb with --shard-mb refuses a size that is
// not positive or that overflows when shifted to bytes, before it writes
// anything.
func TestShardMBRejected(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(in, []byte(`{"id":"a","text":"hello there"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"ingest", "filter", "dedup", "tokenize"} {
		for _, mb := range []string{"-1", "0", "99999999999999", "1099511627776"} {
			out := filepath.Join(dir, verb+mb)
			args := []string{verb, in, "--out", out, "--shard-mb", mb}
			if verb == "tokenize" {
				args = append(args, "--tokenizer", "gpt2")
			}
			got, err := runSmelt(t, args...)
			if err == nil || !strings.Contains(err.Error(), "--shard-mb "+mb) {
				t.Errorf("smelt %s --shard-mb %s: %v\n%s", verb, mb, err, got)
				continue
			}
			if _, serr := os.Stat(out); serr == nil {
				t.Errorf("smelt %s --shard-mb %s created its output before refusing", verb, mb)
			}
		}
	}
	if _, err := runSmelt(t, "tokenize", in, "--out", filepath.Join(dir, "t"), "--shard-mb", "1e-12", "--tokenizer", "gpt2"); err == nil || !strings.Contains(err.Error(), "under one byte") {
		t.Errorf("--shard-mb 1e-12: %v", err)
	}
}

// TestUnknownTokenizerListsNames: a tokenizer name that is neither built
// in nor a file lists the built-in names, not "open gpt7: no such file".
func TestUnknownTokenizerListsNames(t *testing.T) {
	in := filepath.Join(t.TempDir(), "a.txt")
	if err := os.WriteFile(in, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := runSmelt(t, "tokenizer", "encode", "--tokenizer", "gpt7", in)
	if err == nil || !strings.Contains(err.Error(), `unknown tokenizer "gpt7"`) || !strings.Contains(err.Error(), "cl100k_base") || strings.Contains(err.Error(), "no such file") {
		t.Errorf("--tokenizer gpt7: %v", err)
	}
}
