package dedup

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
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

// BenchmarkDecide builds the decision over synthetic signatures (random
// documents, one in ten with a near copy that differs in 8 of 112 values)
// and reports the heap it holds per document. The 1M case is the scale
// run; it needs about 3 GB: go test -bench 'Decide/1M' -benchtime 1x.
func BenchmarkDecide(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) { benchDecide(b, n) })
	}
}

func benchDecide(b *testing.B, n int) {
	opt := DefaultOptions()
	if err := opt.Validate(); err != nil {
		b.Fatal(err)
	}
	for it := 0; it < b.N; it++ {
		b.StopTimer()
		r := rand.New(rand.NewSource(int64(it)))
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		d := NewDeduper(opt)
		sig := make([]uint64, opt.Perms)
		start := time.Now()
		b.StartTimer()
		for i := 0; i < n; i++ {
			if i%10 == 1 {
				// A near copy of the previous document.
				for k := 0; k < 8; k++ {
					sig[r.Intn(len(sig))] = r.Uint64()
				}
			} else {
				for k := range sig {
					sig[k] = r.Uint64()
				}
			}
			k := Sketch{Exact: [2]uint64{r.Uint64(), r.Uint64()}, Sig: append([]uint64(nil), sig...)}
			k.Bands = BandHashes(make([]uint64, 0, opt.Bands), k.Sig, opt.Bands, opt.Rows, 0)
			if err := d.Add(&shards.Document{ID: fmt.Sprintf("doc-%09d", i)}, k); err != nil {
				b.Fatal(err)
			}
		}
		added := time.Since(start)
		var mid runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&mid)
		cpu0 := cpuTime()
		res, err := d.Decide(context.Background(), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		decidedCPU := cpuTime() - cpu0
		decided := time.Since(start) - added
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(mid.HeapAlloc-before.HeapAlloc)/float64(n), "B/doc-held")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "B/doc-peak")
		b.ReportMetric(decided.Seconds(), "s-decide")
		b.ReportMetric(decidedCPU.Seconds(), "cpu-s-decide")
		b.ReportMetric(float64(res.Summary.Dropped), "dropped")
		b.ReportMetric(float64(res.Summary.CandidatePairs), "candidates")
		runtime.KeepAlive(d)
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

// BenchmarkStore commits n synthetic documents into a fresh store and then
// deduplicates n other documents (a tenth near copies of stored ones)
// against it, reporting documents per second for both.
func BenchmarkStore(b *testing.B) {
	const n = 50_000
	opt := DefaultOptions()
	if err := opt.Validate(); err != nil {
		b.Fatal(err)
	}
	for it := 0; it < b.N; it++ {
		r := rand.New(rand.NewSource(int64(it)))
		mk := func(prefix string, base [][]uint64) (*Deduper, [][]uint64) {
			d := NewDeduper(opt)
			var sigs [][]uint64
			for i := 0; i < n; i++ {
				sig := make([]uint64, opt.Perms)
				if base != nil && i%10 == 0 {
					copy(sig, base[i])
					for k := 0; k < 6; k++ {
						sig[r.Intn(len(sig))] = r.Uint64()
					}
				} else {
					for k := range sig {
						sig[k] = r.Uint64()
					}
				}
				sigs = append(sigs, sig)
				k := Sketch{Exact: [2]uint64{r.Uint64(), r.Uint64()}, Sig: sig,
					Bands: BandHashes(nil, sig, opt.Bands, opt.Rows, 0)}
				if err := d.Add(&shards.Document{ID: fmt.Sprintf("%s-%08d", prefix, i)}, k); err != nil {
					b.Fatal(err)
				}
			}
			return d, sigs
		}
		storeDir := filepath.Join(b.TempDir(), "store")
		st, err := OpenStore(storeDir, opt)
		if err != nil {
			b.Fatal(err)
		}
		d1, sigs := mk("old", nil)
		res1, err := d1.Decide(context.Background(), nil)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := d1.Commit(st, res1); err != nil {
			b.Fatal(err)
		}
		commit := time.Since(start)
		d2, _ := mk("new", sigs)
		start = time.Now()
		res2, err := d2.Decide(context.Background(), st)
		if err != nil {
			b.Fatal(err)
		}
		lookup := time.Since(start)
		st.Close()
		var disk int64
		filepath.Walk(storeDir, func(_ string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() && filepath.Ext(info.Name()) == ".sst" {
				disk += info.Size()
			}
			return nil
		})
		b.ReportMetric(float64(disk)/n, "sst-B/doc") // only the first n are committed
		b.ReportMetric(n/commit.Seconds(), "commit-docs/s")
		b.ReportMetric(n/lookup.Seconds(), "lookup-docs/s")
		b.ReportMetric(float64(res2.Summary.StoreMinHash), "store-matches")
	}
}
