package export

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

// loaderSplit is the tokens of each source directory's documents as
// smelt's loader splits them at frac and seqLen: kept for training, held
// out for validation.
func loaderSplit(t testing.TB, dirs []string, frac float64, seqLen int) (train, val []uint32) {
	t.Helper()
	var r [][2]int
	for _, d := range dirs {
		docs := readTokenDocs(t, d)
		split := shards.SplitFor(int64(len(docs)), frac)
		for _, doc := range docs {
			for _, held := range []bool{false, true} {
				r = shards.HeldOutRanges(r[:0], doc.id, len(doc.tokens), split, frac, seqLen, held)
				for _, x := range r {
					if held {
						val = append(val, doc.tokens[x[0]:x[1]]...)
					} else {
						train = append(train, doc.tokens[x[0]:x[1]]...)
					}
				}
			}
		}
	}
	return train, val
}

// writeIDRange writes a token directory of docs documents of random
// lengths whose ids all lie in [lo, lo+100).
func writeIDRange(t *testing.T, dir string, docs, lo int) {
	t.Helper()
	tok := shards.TokenizerInfo{Name: "test", RanksHash: "test", VocabSize: 300, EOT: 299}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	err := writeTokenDir(dir, shards.TokenWriterOptions{Tokenizer: tok, TargetBytes: 8 << 10}, func(w *shards.TokenWriter) error {
		for i := range docs {
			n := 20 + (i*37)%150
			toks := make([]uint32, n)
			for j := range toks {
				toks[j] = uint32(lo + (i*7+j*13)%100)
			}
			if err := w.Write(fmt.Sprintf("%d-%d", lo, i), "s", append(toks, tok.EOT)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestValBinIsTheValidationSplit: nanogpt's and llm.c's val.bin hold
// exactly the held-out data smelt's trainer validates on (shards.Mix's
// HeldOut, in mix order), also for a source with too few documents to be
// split by document (it is split by chunks of 4 x seq_len tokens), and
// train.bin the rest. Before, val.bin held whole documents by id even
// where the loader holds out chunks.
func TestValBinIsTheValidationSplit(t *testing.T) {
	root := t.TempDir()
	writeIDRange(t, filepath.Join(root, "many"), 400, 0)
	writeIDRange(t, filepath.Join(root, "few"), 12, 100)
	dirs := []string{filepath.Join(root, "many"), filepath.Join(root, "few")}
	const frac, seqLen = 0.1, 8
	mixPath := filepath.Join(root, "mix.yaml")
	os.WriteFile(mixPath, []byte("sources:\n  - {name: many, path: many, weight: 1}\n  - {name: few, path: few, weight: 1}\n"), 0o644)
	mix, err := shards.LoadMix(mixPath)
	if err != nil {
		t.Fatal(err)
	}
	var held []uint32
	if err := mix.HeldOut(frac, seqLen, 0, func(_ *shards.MixSource, _ string, toks []uint32) error {
		held = append(held, toks...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	train, val := loaderSplit(t, dirs, frac, seqLen)
	if fmt.Sprint(val) != fmt.Sprint(held) || len(held) == 0 {
		t.Fatalf("the test's split (%d tokens) is not the trainer's (%d)", len(val), len(held))
	}
	var ins []*Input
	for i, d := range dirs {
		in, err := OpenInput([]string{"many", "few"}[i], d, 0)
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, in)
	}
	for _, f := range []Format{FormatNanoGPT, FormatLLMC} {
		out := t.TempDir()
		export(t, ins, out, Options{Format: f, ValFraction: frac, SeqLen: seqLen})
		header := 0
		if f == FormatLLMC {
			header = 1024
		}
		if got := parseFlat(t, filepath.Join(out, "val.bin"), header); fmt.Sprint(got) != fmt.Sprint(held) {
			t.Fatalf("%s val.bin: %d tokens, the trainer's held-out split %d", f, len(got), len(held))
		}
		if got := parseFlat(t, filepath.Join(out, "train.bin"), header); fmt.Sprint(got) != fmt.Sprint(train) {
			t.Fatalf("%s train.bin: %d tokens, want %d", f, len(got), len(train))
		}
	}
}

// TestMixExportKeepsWeights: a mix file's sources exported to nanoGPT or
// llm.c make train.bin in the mix's proportions (15/85 here, where the
// sources' sizes are about 75/25), drawn as smelt's loader draws them;
// val.bin is still the held-out split. Before, train.bin held each source's
// documents once, in proportion to their sizes.
func TestMixExportKeepsWeights(t *testing.T) {
	root := t.TempDir()
	writeIDRange(t, filepath.Join(root, "a"), 300, 0)
	writeIDRange(t, filepath.Join(root, "b"), 100, 100)
	mixPath := filepath.Join(root, "mix.yaml")
	os.WriteFile(mixPath, []byte("sources:\n  - {name: a, path: a, weight: 15}\n  - {name: b, path: b, weight: 85}\n"), 0o644)
	ins, err := ResolveInputs([]string{mixPath})
	if err != nil {
		t.Fatal(err)
	}
	const frac, seqLen = 0.05, 16
	_, val := loaderSplit(t, []string{filepath.Join(root, "a"), filepath.Join(root, "b")}, frac, seqLen)
	for _, f := range []Format{FormatNanoGPT, FormatLLMC} {
		out := t.TempDir()
		export(t, ins, out, Options{Format: f, ValFraction: frac, SeqLen: seqLen})
		header := 0
		if f == FormatLLMC {
			header = 1024
		}
		tr := parseFlat(t, filepath.Join(out, "train.bin"), header)
		var a, b int
		for _, x := range tr {
			switch {
			case x < 100:
				a++
			case x < 200:
				b++
			}
		}
		if share := float64(a) / float64(a+b); math.Abs(share-0.15) > 0.01 {
			t.Fatalf("%s: source a is %.3f of train.bin's tokens, the mix says 0.15", f, share)
		}
		if got := parseFlat(t, filepath.Join(out, "val.bin"), header); fmt.Sprint(got) != fmt.Sprint(val) {
			t.Fatalf("%s val.bin: %d tokens, want %d", f, len(got), len(val))
		}
	}
}
