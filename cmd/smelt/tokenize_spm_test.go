package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/tokenize"
)

// TestTokenizeSentencePiece runs smelt tokenize with SentencePiece .model
// files (BPE and Unigram, made by spm_train; committed in
// tokenize/testdata/spm): eos and bos default to the model's </s> and <s>,
// --eos/--bos override them, and the shards export and train.
func TestTokenizeSentencePiece(t *testing.T) {
	dir := filepath.Join("..", "..", "tokenize", "testdata", "spm")
	bpe, uni := filepath.Join(dir, "bpe4k.model"), filepath.Join(dir, "uni4k.model")
	root := t.TempDir()
	var docs []*shards.Document
	for i, p := range testutil.TrafilaturaPages(t, 10) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ToValidUTF8(string(b), "")
		if len(text) > 6000 {
			text = strings.ToValidUTF8(text[:6000], "")
		}
		docs = append(docs, &shards.Document{ID: fmt.Sprintf("d%02d", i), Source: "web", Text: text})
	}
	writeDocs(t, filepath.Join(root, "docs"), docs)
	check := func(out, file, eos, bos string, wantEOS, wantBOS uint32, withBOS bool) {
		t.Helper()
		args := []string{"tokenize", filepath.Join(root, "docs"), "--out", out, "--tokenizer", file}
		if eos != "" {
			args = append(args, "--eos", eos)
		}
		if bos != "" {
			args = append(args, "--bos", bos)
		}
		if msg, err := runSmelt(t, args...); err != nil {
			t.Fatalf("%v\n%s", err, msg)
		}
		tok, err := tokenize.GetOrLoadWith(file, eos, bos)
		if err != nil {
			t.Fatal(err)
		}
		m, err := shards.ReadManifest(out)
		if err != nil {
			t.Fatal(err)
		}
		if m.Tokenizer.EOT != wantEOS || (m.Tokenizer.BOS != nil) != withBOS || (withBOS && *m.Tokenizer.BOS != wantBOS) {
			t.Fatalf("%s: manifest tokenizer %+v, want eos %d bos %d (%v)", out, m.Tokenizer, wantEOS, wantBOS, withBOS)
		}
		rows := tokenRows(t, out)
		if len(rows) != len(docs) {
			t.Fatalf("%s: %d rows for %d documents", out, len(rows), len(docs))
		}
		for i, row := range rows {
			want := tok.EncodeOrdinary(docs[i].Text)
			if len(want) < 100 {
				t.Fatalf("%s row %d: only %d tokens for %d bytes", out, i, len(want), len(docs[i].Text))
			}
			if withBOS {
				want = append([]uint32{wantBOS}, want...)
			}
			want = append(want, wantEOS)
			if !slices.Equal(row, want) {
				t.Fatalf("%s row %d: %d tokens, want %d (the model's own ids with bos/eos)", out, i, len(row), len(want))
			}
		}
	}
	// spm_train's defaults: <unk>=0, <s>=1, </s>=2.
	b1 := filepath.Join(root, "bpe")
	check(b1, bpe, "</s>", "", 2, 1, true)
	u1 := filepath.Join(root, "uni")
	check(u1, uni, "", "none", 2, 0, false)
	if _, err := runSmelt(t, "tokenize", filepath.Join(root, "docs"), "--out", filepath.Join(root, "bad"), "--tokenizer", uni, "--eos", "<|endoftext|>"); err == nil ||
		!strings.Contains(err.Error(), "<|endoftext|>") {
		t.Fatalf("an --eos the model lacks: %v", err)
	}
	if out, err := runSmelt(t, "export", b1, "--format", "nanogpt", "--out", filepath.Join(root, "ng")); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	if out, err := runSmelt(t, "train", "--data", u1, "--config", "tiny", "--steps", "2", "--batch-size", "2", "--seq-len", "16",
		"--warmup", "1", "--val-every", "0", "--threads", "1", "--tokenizer", uni, "--out", filepath.Join(root, "run")); err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
}
