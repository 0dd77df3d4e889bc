package dedup

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lsh "github.com/ekzhu/minhash-lsh"
	"github.com/smelt-dev/smelt/shards"
)

// benchTexts is English news text: the McCormick articles when the shared
// data is there, else generated words.
func benchTexts(b *testing.B) ([]string, int64) {
	path := filepath.Join(sharedData, "dedup", "mccormick_articles_2500.train")
	var texts []string
	if data, err := os.ReadFile(path); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if _, text, ok := strings.Cut(line, " "); ok {
				texts = append(texts, text)
			}
		}
	} else {
		b.Logf("shared data absent (%v): generated text", err)
		r := rand.New(rand.NewSource(1))
		for i := 0; i < 2000; i++ {
			texts = append(texts, strings.Join(randomWords(r, 250), " "))
		}
	}
	var n int64
	for _, t := range texts {
		n += int64(len(t))
	}
	return texts, n
}

// ekzhuSignature is the peer: ekzhu/minhash-lsh's own Minhash type over the
// same word 5-grams.
func ekzhuSignature(text string, perms, ngram int) []uint64 {
	m := lsh.NewMinhash(1, perms)
	words := Words(text)
	if len(words) < ngram {
		m.Push([]byte(strings.Join(words, " ")))
		return m.Signature()
	}
	var buf []byte
	for i := 0; i+ngram <= len(words); i++ {
		buf = buf[:0]
		for k, w := range words[i : i+ngram] {
			if k > 0 {
				buf = append(buf, ' ')
			}
			buf = append(buf, w...)
		}
		m.Push(buf)
	}
	return m.Signature()
}

// BenchmarkSignature measures one core's signature throughput at 112
// permutations over word 5-grams of English news text, for this package
// and for ekzhu's Minhash side by side; "ratio" times both in the same
// iterations and reports smelt-MB/s, ekzhu-MB/s and speedup-x.
func BenchmarkSignature(b *testing.B) {
	texts, total := benchTexts(b)
	h, err := NewHasher(112, 5, 1)
	if err != nil {
		b.Fatal(err)
	}
	sig := make([]uint64, 112)
	b.Run("smelt", func(b *testing.B) {
		b.SetBytes(total)
		for i := 0; i < b.N; i++ {
			for _, t := range texts {
				h.SignatureInto(sig, t)
			}
		}
	})
	b.Run("smelt-scalar", func(b *testing.B) {
		// The portable loop, as on CPUs without AVX-512.
		defer func(v bool) { useAVX512 = v }(useAVX512)
		useAVX512 = false
		b.SetBytes(total)
		for i := 0; i < b.N; i++ {
			for _, t := range texts {
				h.SignatureInto(sig, t)
			}
		}
	})
	b.Run("ekzhu", func(b *testing.B) {
		b.SetBytes(total)
		for i := 0; i < b.N; i++ {
			for _, t := range texts {
				ekzhuSignature(t, 112, 5)
			}
		}
	})
	b.Run("ratio", func(b *testing.B) {
		var ours, theirs time.Duration
		for i := 0; i < b.N; i++ {
			start := time.Now()
			for _, t := range texts {
				h.SignatureInto(sig, t)
			}
			ours += time.Since(start)
			start = time.Now()
			for _, t := range texts {
				ekzhuSignature(t, 112, 5)
			}
			theirs += time.Since(start)
		}
		b.ReportMetric(float64(total)*float64(b.N)/ours.Seconds()/1e6, "smelt-MB/s")
		b.ReportMetric(float64(total)*float64(b.N)/theirs.Seconds()/1e6, "ekzhu-MB/s")
		b.ReportMetric(theirs.Seconds()/ours.Seconds(), "speedup-x")
	})
}

// BenchmarkSketch is the whole per-document cost of pass 1: normalisation,
// the exact hash, the signature and the band keys.
func BenchmarkSketch(b *testing.B) {
	texts, total := benchTexts(b)
	opt := DefaultOptions()
	sk, err := NewSketcher(&opt)
	if err != nil {
		b.Fatal(err)
	}
	docs := make([]*shards.Document, len(texts))
	for i, t := range texts {
		docs[i] = &shards.Document{ID: fmt.Sprint(i), Text: t}
	}
	b.SetBytes(total)
	for i := 0; i < b.N; i++ {
		for _, d := range docs {
			sk.Sketch(d)
		}
	}
}

// BenchmarkRun is the whole stage on generated documents: both passes,
// Arrow shards in and out.
func BenchmarkRun(b *testing.B) {
	s := genCorpus(5, 3000, "b", "web")
	in := filepath.Join(b.TempDir(), "in")
	writeInput(b, in, s.docs, 0)
	var total int64
	for _, d := range s.docs {
		total += int64(len(d.Text))
	}
	b.SetBytes(total)
	for i := 0; i < b.N; i++ {
		out := filepath.Join(b.TempDir(), fmt.Sprint(i))
		if _, _, err := Run(context.Background(), Config{Inputs: []string{in}, Out: out}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInMemory is the peer of BenchmarkRun: the in-memory dedup that
// the staged steps replaced (sketch and decide only, no shards read or
// written), on the same documents.
func BenchmarkInMemory(b *testing.B) {
	s := genCorpus(5, 3000, "b", "web")
	var total int64
	for _, d := range s.docs {
		total += int64(len(d.Text))
	}
	b.SetBytes(total)
	for i := 0; i < b.N; i++ {
		if _, _, err := memDedup(s.docs, DefaultOptions()); err != nil {
			b.Fatal(err)
		}
	}
}
