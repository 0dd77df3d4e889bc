package filter

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smelt-dev/smelt/shards"
)

// benchDocs is real web text when ../shared/data is present (Common Crawl
// WET and JSONL documents plus reference prose chunks), else generated text.
func benchDocs(b *testing.B) ([]*shards.Document, int64) {
	var docs []*shards.Document
	if _, err := os.Stat(sharedData); err == nil {
		docs = append(docs, crawlDocs(b)...)
		docs = append(docs, referenceChunks(b, "clean_text/debian_jargon-text_4.4.7_jargon.txt.gz")[:200]...)
	} else {
		r := rand.New(rand.NewPCG(1, 1))
		for i := 0; i < 400; i++ {
			docs = append(docs, &shards.Document{ID: "g", Text: genDoc(r, i%2 == 0)})
		}
	}
	var n int64
	for _, d := range docs {
		n += int64(len(d.Text))
	}
	return docs, n
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// perCore runs f b.N times and reports, besides Go's wall-clock MB/s,
// "MB/cpu-s": bytes over the CPU time the process used (GC included). On
// a machine shared with other jobs the wall clock counts time spent waiting
// for a core; CPU time is the per-core throughput the issue asks for.
func perCore(b *testing.B, n int64, f func()) {
	b.SetBytes(n)
	b.ResetTimer()
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		f()
	}
	b.StopTimer()
	if cpu := cpuTime() - start; cpu > 0 {
		b.ReportMetric(float64(n)*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
	}
}

func benchRule(b *testing.B, r Rule) {
	docs, n := benchDocs(b)
	perCore(b, n, func() {
		for _, d := range docs {
			r.Check(d)
		}
	})
}

func BenchmarkGopherQuality(b *testing.B)    { benchRule(b, DefaultGopherQuality()) }
func BenchmarkGopherRepetition(b *testing.B) { benchRule(b, DefaultGopherRepetition()) }
func BenchmarkC4(b *testing.B)               { benchRule(b, DefaultC4()) }
func BenchmarkFineWeb(b *testing.B)          { benchRule(b, DefaultFineWebQuality()) }

// BenchmarkAllHeuristics runs every heuristic on every document (no early
// exit: the worst case, as for a document that passes them all), sharing one
// tokenisation between the Gopher rules as Pipeline does. The goal
// is >= 20 MB/s per core.
func BenchmarkAllHeuristics(b *testing.B) {
	docs, n := benchDocs(b)
	rep, qual := DefaultGopherRepetition(), DefaultGopherQuality()
	rules := []Rule{DefaultC4(), DefaultFineWebQuality()}
	var tk tokens
	perCore(b, n, func() {
		for _, d := range docs {
			tk.tokenize(d.Text)
			rep.checkTokens(d, &tk)
			qual.checkTokens(d, &tk)
			for _, r := range rules {
				r.Check(d)
			}
		}
	})
}

// BenchmarkPipeline is the stage's real path: rules in order, stopping at
// the first drop, C4 rewriting kept text.
func BenchmarkPipeline(b *testing.B) {
	docs, n := benchDocs(b)
	cfg := DefaultConfig()
	p, _ := cfg.Pipeline()
	perCore(b, n, func() {
		for _, d := range docs {
			c := *d
			p.Apply(&c)
		}
	})
}

// BenchmarkClassifierScore scores documents with a 2^20-bucket model (goal
// >= 50 MB/s per core).
func BenchmarkClassifierScore(b *testing.B) {
	docs, n := benchDocs(b)
	m := &Model{Bits: 20, Bigrams: true, Weights: make([]float32, 1<<20)}
	r := rand.New(rand.NewPCG(2, 2))
	for i := range m.Weights {
		m.Weights[i] = float32(r.NormFloat64())
	}
	perCore(b, n, func() {
		for _, d := range docs {
			m.Score(d.Text)
		}
	})
}

func BenchmarkModelLoad(b *testing.B) {
	m := &Model{Bits: 20, Bigrams: true, Weights: make([]float32, 1<<20)}
	data, _ := m.MarshalBinary()
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		if _, err := UnmarshalModel(data); err != nil {
			b.Fatal(err)
		}
	}
}

// benchVocab is the distinct words of real prose (WikiText-2, the Jargon
// File), for generating eval records with 10 million distinct n-grams.
func benchVocab(b *testing.B) []string {
	needShared(b)
	seen := map[string]bool{}
	var vocab []string
	for _, rel := range []string{"clean_text/wikitext-2_valid.txt", "clean_text/debian_jargon-text_4.4.7_jargon.txt.gz"} {
		for _, w := range strings.Fields(readText(b, rel)) {
			if !seen[w] {
				seen[w] = true
				vocab = append(vocab, w)
			}
		}
	}
	return vocab
}

// benchEvalRecords calls add for eval records of 100 words drawn from real
// vocabulary until they hold n n-grams.
func benchEvalRecords(b *testing.B, n int, add func(id, text string) error) {
	vocab := benchVocab(b)
	r := rand.New(rand.NewPCG(3, 3))
	words := make([]string, 100)
	for i, total := 0, 0; total < n; i++ {
		for k := range words {
			words[k] = vocab[r.IntN(len(vocab))]
		}
		if err := add(strconv.Itoa(i), strings.Join(words, " ")); err != nil {
			b.Fatal(err)
		}
		total += len(words) - DefaultNGram + 1
	}
}

const benchIndexNGrams = 10_000_000

var (
	benchIndexOnce sync.Once
	benchIndexPath string
)

// TestMain removes the benchmarks' shared index (142 MB) after the run.
func TestMain(m *testing.M) {
	code := m.Run()
	if benchIndexPath != "" {
		os.RemoveAll(filepath.Dir(benchIndexPath))
	}
	os.Exit(code)
}

// benchIndex builds (once per process) an index of 10 million eval n-grams.
func benchIndex(b *testing.B) *Index {
	benchIndexOnce.Do(func() {
		dir, err := os.MkdirTemp("", "smelt-bench-decontam-")
		if err != nil {
			b.Fatal(err)
		}
		ib := &IndexBuilder{}
		set, _ := ib.AddSet("bench")
		benchEvalRecords(b, benchIndexNGrams, func(id, text string) error { return ib.Add(set, id, text) })
		benchIndexPath = filepath.Join(dir, "bench.dcx")
		if _, err := ib.Write(benchIndexPath); err != nil {
			b.Fatal(err)
		}
	})
	return openTestIndex(b, benchIndexPath)
}

// peakRSS is the process's peak resident set (VmHWM) in MiB, from the OS.
func peakRSS() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkDecontamIndex indexes eval records holding 10 million n-grams
// (run it alone for a meaningful peak RSS: -run '^$' -bench DecontamIndex).
func BenchmarkDecontamIndex(b *testing.B) {
	var texts []string
	benchEvalRecords(b, benchIndexNGrams, func(_, text string) error { texts = append(texts, text); return nil })
	var bytes int64
	for _, t := range texts {
		bytes += int64(len(t))
	}
	dir := b.TempDir()
	b.SetBytes(bytes)
	b.ResetTimer()
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		ib := &IndexBuilder{}
		set, _ := ib.AddSet("bench")
		for k, t := range texts {
			if err := ib.Add(set, strconv.Itoa(k), t); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := ib.Write(filepath.Join(dir, "x.dcx")); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpu := cpuTime() - start
	b.ReportMetric(float64(benchIndexNGrams)*float64(b.N)/b.Elapsed().Seconds()/1e6, "M-ngrams/s")
	b.ReportMetric(float64(benchIndexNGrams)*float64(b.N)/cpu.Seconds()/1e6, "M-ngrams/cpu-s")
	b.ReportMetric(peakRSS(), "peak-RSS-MiB")
}

func benchDecontam(b *testing.B, policy string) {
	x := benchIndex(b)
	docs, n := benchDocs(b)
	r := DefaultDecontam()
	r.Policy, r.Index = policy, benchIndexPath
	r.UseIndex(x)
	perCore(b, n, func() {
		for _, d := range docs {
			r.Annotate(d)
		}
	})
}

// BenchmarkDecontamDrop applies the decontam rule (10M-n-gram index) to
// the same documents as BenchmarkAllHeuristics: the goal is at
// least the heuristics' speed.
func BenchmarkDecontamDrop(b *testing.B) { benchDecontam(b, DecontamDrop) }

// BenchmarkDecontamGPT3 is the same with the gpt3 policy.
func BenchmarkDecontamGPT3(b *testing.B) { benchDecontam(b, DecontamGPT3) }

// BenchmarkPII runs the PII rule over the bench documents.
func BenchmarkPII(b *testing.B) {
	docs, n := benchDocs(b)
	p := DefaultPII()
	perCore(b, n, func() {
		for _, d := range docs {
			p.Annotate(d)
		}
	})
}

// piiRegexps are regular expressions for the same candidates (without the
// validation the scanners do), for BenchmarkPIIRegexp.
var piiRegexps = []*regexp.Regexp{
	regexp.MustCompile(`[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}`),
	regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}\b`),
	regexp.MustCompile(`\b[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}\b`),
	regexp.MustCompile(`(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}`),
	regexp.MustCompile(`\b(?:\d[ -]?){13,19}\b`),
	regexp.MustCompile(`\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b`),
}

// BenchmarkPIIRegexp finds the candidates with Go's regexp instead: the
// reason pii.go hand-writes its scanners.
func BenchmarkPIIRegexp(b *testing.B) {
	docs, n := benchDocs(b)
	perCore(b, n, func() {
		for _, d := range docs {
			for _, re := range piiRegexps {
				re.FindAllStringIndex(d.Text, -1)
			}
		}
	})
}

// BenchmarkNormWords is the decontam rule's normalisation and n-gram
// hashing alone, without index lookups.
func BenchmarkNormWords(b *testing.B) {
	docs, n := benchDocs(b)
	var words []wordSpan
	var sink uint64
	perCore(b, n, func() {
		for _, d := range docs {
			words = normWords(d.Text, words[:0])
			ngramHashes(words, DefaultNGram, func(_ int, h uint64) bool { sink ^= h; return true })
		}
	})
	_ = sink
}
