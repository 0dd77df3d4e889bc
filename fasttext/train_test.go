package fasttext_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/fasttext"
	"github.com/smelt-dev/smelt/filter"
	"github.com/smelt-dev/smelt/internal/testutil"
)

// qsource is one source of the reference-vs-crawl data: the public-domain
// books the demo's GPT-3 classifier takes as positives (shipped in Go
// modules), the shared clean-text samples, and the crawl (go-trafilatura
// pages and the shared WET/WARC/JSONL documents) as negatives, each cut
// into ~2,000-byte chunks as 'smelt classifier train' does.
type qsource struct {
	name     string
	positive bool
	chunks   []string
}

func moduleFile(t testing.TB, module, rel string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Skipf("module %s not in the module cache: %v", module, err)
	}
	return filepath.Join(dir, rel)
}

func readText(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("%s: %v", path, err)
	}
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if b, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	return string(b)
}

func qualitySources(t testing.TB, withShared bool) []qsource {
	t.Helper()
	chunk := func(texts ...string) []string {
		var out []string
		for _, s := range texts {
			out = append(out, filter.ChunkText(s, 2000)...)
		}
		return out
	}
	srcs := []qsource{
		{"tom_sawyer", true, chunk(readText(t, moduleFile(t, "github.com/klauspost/compress", "testdata/Mark.Twain-Tom.Sawyer.txt")))},
		{"sherlock_holmes", true, chunk(readText(t, moduleFile(t, "github.com/pierrec/lz4/v4", "testdata/pg1661.txt")))},
		{"opticks", true, chunk(readText(t, moduleFile(t, "github.com/andybalholm/brotli", "testdata/Isaac.Newton-Opticks.txt")))},
		{"candide", true, chunk(readText(t, moduleFile(t, "golang.org/x/text", "encoding/testdata/candide-utf-8.txt")))},
	}
	var pages []string
	for _, p := range comparisonPages(t) {
		pages = append(pages, p.text)
	}
	srcs = append(srcs, qsource{"trafilatura_pages", false, chunk(pages...)})
	if withShared {
		for _, f := range []string{"clean_text/tinyshakespeare.txt", "clean_text/wikitext-2_valid.txt",
			"clean_text/debian_jargon-text_4.4.7_jargon.txt.gz", "clean_text/minbpe_taylorswift_wikipedia.txt"} {
			srcs = append(srcs, qsource{filepath.Base(f), true, chunk(readText(t, testutil.SharedData(t, f)))})
		}
		srcs = append(srcs, qsource{"shared_crawl", false, chunk(sharedTexts(t)...)})
	}
	return srcs
}

func label(pos bool) string {
	if pos {
		return "hq"
	}
	return "cc"
}

// TestTrainedModelMatchesReference trains on the books-vs-pages data in
// Go, saves the model, and checks that the reference fastText loads it and
// predicts the same labels and probabilities on held-out chunks.
func TestTrainedModelMatchesReference(t *testing.T) {
	if raceEnabled {
		// Training under the race detector took minutes on a busy machine.
		testutil.Thorough(t)
	}
	r := ref(t)
	srcs := qualitySources(t, false)
	var train []fasttext.Example
	var test []string
	for _, s := range srcs {
		for i, c := range s.chunks {
			if filter.InHoldOut(fmt.Sprintf("%s#%d", s.name, i), 0.2) {
				test = append(test, oneLine(c))
			} else {
				train = append(train, fasttext.Example{Labels: []string{label(s.positive)}, Text: c})
			}
		}
	}
	for _, opt := range []fasttext.TrainOptions{
		{Bucket: 1 << 18, Epoch: 5},
		{Bucket: 1 << 16, Loss: fasttext.LossOVA, Minn: 3, Maxn: 5, Dim: 8, Epoch: 2},
	} {
		t.Run(fmt.Sprintf("%s-minn%d", lossName(opt.Loss), opt.Minn), func(t *testing.T) {
			m, err := fasttext.Train(context.Background(), train, opt)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "q.bin")
			if err := m.Save(path); err != nil {
				t.Fatal(err)
			}
			m2, err := fasttext.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			var b1, b2 bytes.Buffer
			if err := m.Write(&b1); err != nil {
				t.Fatal(err)
			}
			if err := m2.Write(&b2); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b1.Bytes(), b2.Bytes()) {
				t.Fatal("a saved model does not load back to the same bytes")
			}
			want := r.predict(t, path, test, 2, 0)
			compare(t, m2, test, want, 2, 0)
			// The held-out chunks are separable: the model learned something.
			right := 0
			for i, w := range want {
				if len(w) > 0 && strings.HasSuffix(w[0].Label, "hq") == isBookChunk(srcs, test[i]) {
					right++
				}
			}
			if acc := float64(right) / float64(len(test)); acc < 0.8 {
				t.Errorf("held-out accuracy %.3f on %d chunks", acc, len(test))
			}
		})
	}
	// Training is deterministic.
	a, _ := fasttext.Train(context.Background(), train[:300], fasttext.TrainOptions{Bucket: 1 << 12, Epoch: 2})
	b, _ := fasttext.Train(context.Background(), train[:300], fasttext.TrainOptions{Bucket: 1 << 12, Epoch: 2})
	var ba, bb bytes.Buffer
	a.Write(&ba)
	b.Write(&bb)
	if !bytes.Equal(ba.Bytes(), bb.Bytes()) {
		t.Error("two trainings on the same examples differ")
	}
}

func lossName(l fasttext.LossName) string {
	if l == 0 {
		return "softmax"
	}
	return l.String()
}

func isBookChunk(srcs []qsource, text string) bool {
	for _, s := range srcs {
		if !s.positive {
			continue
		}
		for _, c := range s.chunks {
			if oneLine(c) == text {
				return true
			}
		}
	}
	return false
}

// TestReferenceTrainedModels has the reference fastText train models with
// every loss, word bigrams and character n-grams, and checks that they
// load here and predict as the reference does.
func TestReferenceTrainedModels(t *testing.T) {
	testutil.Thorough(t) // a minute or more on a busy machine: a measurement, run by .ci/run
	r := ref(t)
	srcs := qualitySources(t, false)
	var lines, test []string
	for _, s := range srcs {
		for i, c := range s.chunks {
			if i%4 == 3 {
				test = append(test, oneLine(c))
				continue
			}
			// Several labels on some lines: ova learns all of them.
			labels := "__label__" + label(s.positive)
			if i%5 == 0 {
				labels += " __label__" + s.name
			}
			lines = append(lines, labels+" "+oneLine(c))
		}
	}
	dir := t.TempDir()
	input := filepath.Join(dir, "train.txt")
	if err := os.WriteFile(input, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, loss := range []string{"softmax", "hs", "ns", "ova"} {
		t.Run(loss, func(t *testing.T) {
			path := filepath.Join(dir, loss+".bin")
			r.train(t, input, path, map[string]any{"loss": loss, "dim": 10, "epoch": 1, "lr": 0.5,
				"wordNgrams": 2, "minn": 2, "maxn": 4, "bucket": 50000, "minCount": 2})
			m, err := fasttext.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if m.Dict().NLabels() < 3 {
				t.Fatalf("%d labels", m.Dict().NLabels())
			}
			want := r.predict(t, path, test, 4, 0)
			compare(t, m, test, want, 4, 0)
			want = r.predict(t, path, test[:200], -1, 0.01)
			compare(t, m, test[:200], want, -1, 0.01)
		})
	}
}
