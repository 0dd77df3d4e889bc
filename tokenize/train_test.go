package tokenize

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestTrainMatchesCS336 reproduces the cs336 reference run: vocab 500 on
// corpus.en with <|endoftext|>; merges must be identical and in order, and
// the vocabulary identical id for id.
func TestTrainMatchesCS336(t *testing.T) {
	dir := filepath.Join(sharedDataDir(t), "tokenizer")
	for _, workers := range []int{1, 3} {
		tr, err := TrainFiles(context.Background(), []string{filepath.Join(dir, "cs336_corpus.en")},
			TrainOptions{VocabSize: 500, Specials: []string{EndOfText}, Workers: workers, ChunkSize: 4096})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(dir, "cs336_train-bpe-reference-merges.txt"))
		if err != nil {
			t.Fatal(err)
		}
		var want [][2]string
		for _, line := range strings.Split(strings.TrimRight(string(raw), "\n"), "\n") {
			m, err := parseMergeLine(line)
			if err != nil {
				t.Fatalf("reference merge %q: %v", line, err)
			}
			want = append(want, m)
		}
		if workers == 3 {
			// The same run from a gzip copy of the corpus.
			raw, _ := os.ReadFile(filepath.Join(dir, "cs336_corpus.en"))
			gzPath := filepath.Join(t.TempDir(), "corpus.en.gz")
			var zb bytes.Buffer
			zw := gzip.NewWriter(&zb)
			zw.Write(raw)
			zw.Close()
			os.WriteFile(gzPath, zb.Bytes(), 0o644)
			if tr, err = TrainFiles(context.Background(), []string{gzPath}, TrainOptions{VocabSize: 500, Specials: []string{EndOfText}, Workers: workers}); err != nil {
				t.Fatal(err)
			}
		}
		if len(tr.Merges) != len(want) {
			t.Fatalf("workers=%d: %d merges, want %d", workers, len(tr.Merges), len(want))
		}
		for i, m := range tr.Merges {
			if string(m[0]) != want[i][0] || string(m[1]) != want[i][1] {
				t.Fatalf("workers=%d: merge %d = (%q, %q), want (%q, %q)", workers, i, m[0], m[1], want[i][0], want[i][1])
			}
		}
		var refVocab map[string]int
		raw, err = os.ReadFile(filepath.Join(dir, "cs336_train-bpe-reference-vocab.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &refVocab); err != nil {
			t.Fatal(err)
		}
		if len(refVocab) != len(tr.Vocab) {
			t.Fatalf("vocab has %d entries, reference %d", len(tr.Vocab), len(refVocab))
		}
		for s, id := range refVocab {
			b := []byte(s)
			if s != EndOfText {
				if b, err = ParseByteLevel(s); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(tr.Vocab[id], b) {
				t.Errorf("vocab id %d = %q, reference %q", id, tr.Vocab[id], b)
			}
		}
	}
}

// TestTrainRoundTrip needs no shared data: train on generated text, write
// tokenizer.json, load it back, and check encode/decode and that the
// in-memory and loaded tokenizers agree.
func TestTrainRoundTrip(t *testing.T) {
	var sb strings.Builder
	r := rand.New(rand.NewPCG(7, 7))
	syll := []string{"ka", "to", "ri", "mon", "sel", "a", "e", "pra", "dun", "vis", "ol", "que", "st", "th", "ing"}
	for i := 0; i < 6000; i++ {
		n := 1 + r.IntN(3)
		if i%9 == 0 {
			sb.WriteString(" ")
		}
		sb.WriteString(" ")
		for j := 0; j < n; j++ {
			sb.WriteString(syll[min(r.IntN(len(syll)), r.IntN(len(syll)))])
		}
		if i%13 == 0 {
			fmt.Fprintf(&sb, ", %d.", r.IntN(2000))
		}
		if i%400 == 0 {
			sb.WriteString(EndOfText + "\n")
		}
	}
	text := sb.String()
	tr, err := Train(context.Background(), []io.Reader{strings.NewReader(text)}, TrainOptions{VocabSize: 400, Specials: []string{EndOfText}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Vocab) != 400 {
		t.Fatalf("vocab %d, want 400", len(tr.Vocab))
	}
	data, err := tr.MarshalHF()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := WriteFileAtomic(path, data); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := tr.Tokenizer("mem")
	if err != nil {
		t.Fatal(err)
	}
	if loaded.VocabSize() != 400 || loaded.RanksHash() != mem.RanksHash() {
		t.Fatalf("loaded vocab %d hash %s, in-memory hash %s", loaded.VocabSize(), loaded.RanksHash(), mem.RanksHash())
	}
	if eot, ok := loaded.EOT(); !ok || eot != 0 {
		t.Fatalf("EOT = %d %v", eot, ok)
	}
	ids, err := loaded.Encode(text[:2000], AllSpecial, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) > 2000/3 {
		t.Errorf("trained vocabulary compresses poorly: %d ids for 2000 bytes", len(ids))
	}
	back, _ := loaded.Decode(ids)
	if string(back) != text[:2000] {
		t.Fatal("round trip failed")
	}
	// Training twice gives byte-identical files.
	tr2, _ := Train(context.Background(), []io.Reader{strings.NewReader(text)}, TrainOptions{VocabSize: 400, Specials: []string{EndOfText}, Workers: 1, ChunkSize: 777})
	data2, _ := tr2.MarshalHF()
	if !bytes.Equal(data, data2) {
		t.Fatal("training is not deterministic across worker counts and chunk sizes")
	}
	if !slices.Equal(mem.EncodeOrdinary("fox jumps"), loaded.EncodeOrdinary("fox jumps")) {
		t.Fatal("in-memory and loaded tokenizers differ")
	}
}

func TestTrainCancelAndErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Train(ctx, []io.Reader{strings.NewReader(strings.Repeat("abc def\n", 1000))}, TrainOptions{VocabSize: 300})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if _, err := Train(context.Background(), nil, TrainOptions{VocabSize: 100}); err == nil {
		t.Fatal("vocab below 256 accepted")
	}
	if _, err := TrainFiles(context.Background(), []string{filepath.Join(t.TempDir(), "missing.txt")}, TrainOptions{VocabSize: 300}); err == nil || !strings.Contains(err.Error(), "missing.txt") {
		t.Fatalf("missing file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.gz")
	os.WriteFile(bad, []byte("not gzip"), 0o644)
	if _, err := TrainFiles(context.Background(), []string{bad}, TrainOptions{VocabSize: 300}); err == nil || !strings.Contains(err.Error(), "bad.gz") {
		t.Fatalf("bad gzip: %v", err)
	}
}
