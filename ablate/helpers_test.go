package ablate

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/tokenize"
)

// moduleFile returns a file shipped inside a Go module this build depends
// on (the demo's books), skipping the test when the module cache lacks it.
func moduleFile(t testing.TB, module, rel string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output()
	if err != nil {
		t.Skipf("cannot locate module %s: %v", module, err)
	}
	p := filepath.Join(strings.TrimSpace(string(out)), rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s not in the module cache: %v", p, err)
	}
	return p
}

// tomSawyer returns Tom Sawyer as documents of about 2 KB of whole
// paragraphs each.
func tomSawyer(t testing.TB) []*shards.Document {
	t.Helper()
	data, err := os.ReadFile(moduleFile(t, "github.com/klauspost/compress", "testdata/Mark.Twain-Tom.Sawyer.txt"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	var docs []*shards.Document
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			docs = append(docs, &shards.Document{ID: fmt.Sprintf("tom-%04d", len(docs)), Source: "books", Text: cur.String()})
			cur.Reset()
		}
	}
	for _, p := range strings.Split(text, "\n\n") {
		if strings.TrimSpace(p) == "" {
			continue
		}
		if cur.Len() > 0 {
			cur.WriteString("\n\n")
		}
		cur.WriteString(p)
		if cur.Len() > 2000 {
			flush()
		}
	}
	flush()
	return docs
}

// shuffled returns the documents with the words of each shuffled (seeded):
// the same words, so the same unigram statistics, without their order.
func shuffled(docs []*shards.Document, seed uint64) []*shards.Document {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]*shards.Document, len(docs))
	for i, d := range docs {
		w := strings.Fields(d.Text)
		r.Shuffle(len(w), func(a, b int) { w[a], w[b] = w[b], w[a] })
		c := *d
		c.Text = strings.Join(w, " ")
		out[i] = &c
	}
	return out
}

// noise returns documents of random tokens of the vocabulary's words.
func noise(docs []*shards.Document, seed uint64) []*shards.Document {
	r := rand.New(rand.NewPCG(seed, 2))
	out := make([]*shards.Document, len(docs))
	for i, d := range docs {
		var b strings.Builder
		for b.Len() < len(d.Text) {
			n := 1 + r.IntN(8)
			for k := 0; k < n; k++ {
				b.WriteByte(byte('a' + r.IntN(26)))
			}
			b.WriteByte(' ')
		}
		out[i] = &shards.Document{ID: fmt.Sprintf("noise-%04d", i), Source: "noise", Text: b.String()}
	}
	return out
}

func writeDocs(t testing.TB, dir string, docs []*shards.Document) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := shards.NewDocWriter(dir, shards.DocWriterOptions{TargetBytes: 256 << 10})
	for _, d := range docs {
		if err := w.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := shards.WriteManifest(dir, &shards.Manifest{Kind: shards.KindDocuments, Stage: "test", Shards: w.Shards(), Totals: shards.SumShards(w.Shards())}); err != nil {
		t.Fatal(err)
	}
}

// bpe trains a small byte-level BPE on the documents and saves it, so
// checkpoints can embed it.
func bpe(t testing.TB, dir string, vocab int, docs []*shards.Document) (*tokenize.Tokenizer, string) {
	t.Helper()
	var sb strings.Builder
	for _, d := range docs {
		sb.WriteString(d.Text)
		sb.WriteString("\n")
	}
	tr, err := tokenize.Train(context.Background(), []io.Reader{strings.NewReader(sb.String())},
		tokenize.TrainOptions{VocabSize: vocab, Specials: []string{"<|endoftext|>"}, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	data, err := tr.MarshalHF()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tokenizer.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenize.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return tok, path
}
