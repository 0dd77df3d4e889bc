package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/tokenize"
)

// TestTokenizeTiktokenFile runs smelt tokenize with a tiktoken rank file
// that is not named after a built-in (cl100k_base's ranks written out as
// mine.tiktoken): without --pattern it is refused naming the flag; with
// --pattern cl100k and --specials the shards hold cl100k_base's ids, and
// the eos comes from the specials' tokenizer_config.json (no <|endoftext|>,
// which would come first).
func TestTokenizeTiktokenFile(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	root := t.TempDir()
	src, err := tokenize.Get("cl100k_base")
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for id := uint32(0); id < 100256; id++ {
		if b, ok := src.TokenBytes(id); ok {
			sb.WriteString(base64.StdEncoding.EncodeToString(b) + " " + strconv.Itoa(int(id)) + "\n")
		}
	}
	file := filepath.Join(root, "mine.tiktoken")
	if err := os.WriteFile(file, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(root, "tokenizer_config.json")
	if err := os.WriteFile(config, []byte(`{"added_tokens_decoder": {"100258": {"content": "<|fim_prefix|>", "special": true},
		"100276": {"content": "<|endofprompt|>", "special": true}}, "eos_token": "<|endofprompt|>"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var docs []*shards.Document
	for i, p := range testutil.TrafilaturaPages(t, 6) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, &shards.Document{ID: fmt.Sprintf("d%02d", i), Source: "web", Text: strings.ToValidUTF8(string(b), "")})
	}
	writeDocs(t, filepath.Join(root, "docs"), docs)
	if _, err := runSmelt(t, "tokenize", filepath.Join(root, "docs"), "--out", filepath.Join(root, "bad"), "--tokenizer", file); err == nil ||
		!strings.Contains(err.Error(), "--pattern") {
		t.Fatalf("a tiktoken file without --pattern: %v", err)
	}
	out := filepath.Join(root, "tok")
	if msg, err := runSmelt(t, "tokenize", filepath.Join(root, "docs"), "--out", out, "--tokenizer", file, "--pattern", "cl100k", "--specials", config); err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	m, err := shards.ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.Tokenizer.EOT != 100276 {
		t.Errorf("eot %d, want the config's eos_token <|endofprompt|> 100276", m.Tokenizer.EOT)
	}
	rows := tokenRows(t, out)
	if len(rows) != len(docs) {
		t.Fatalf("%d rows for %d documents", len(rows), len(docs))
	}
	for i, row := range rows {
		want := append(src.EncodeOrdinary(docs[i].Text), 100276)
		if len(want) < 50 || !slices.Equal(row, want) {
			t.Fatalf("row %d: %d tokens, want cl100k_base's %d", i, len(row), len(want))
		}
	}
	info, err := runSmelt(t, "tokenizer", "info", "--tokenizer", file, "--pattern", `(?:`+tokenize.PatternCL100K.Regexp()+`)`, "--specials", "<|endoftext|>=100257")
	if err != nil || !strings.Contains(info, "pattern     regex") || !strings.Contains(info, "eot         100257") {
		t.Errorf("tokenizer info with a regex pattern: %v\n%s", err, info)
	}
}
