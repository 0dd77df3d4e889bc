package dedup

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"

	"github.com/smelt-dev/smelt/shards"
)

// SynthConfig describes a synthetic corpus with known duplicates, for
// tests and benchmarks of dedup at scale (smelt dedup synth writes one).
type SynthConfig struct {
	// Docs is the number of documents in all.
	Docs int
	// Words per document (0 = 200, about 1.2 KB of text).
	Words int
	// NearFrac is the fraction of documents that are near copies of
	// another (0 = 0.13).
	NearFrac float64
	// GroupMax is the most near copies of one original (0 = 3).
	GroupMax int
	// Edits is the number of words changed in each near copy (0 = 2:
	// estimated Jaccard similarity of 5-grams about 0.9).
	Edits int
	// Boilerplate documents share BoilerWords words (0 = 300) and add
	// BoilerWords/2 of their own: pairwise similarity about 0.5, none a
	// duplicate of another.
	Boilerplate int
	BoilerWords int
	// Seed draws the corpus.
	Seed int64
	// Source names the documents' source (default "synth").
	Source string
}

// SynthTruth is what a synthetic corpus holds.
type SynthTruth struct {
	Docs int64 `json:"docs"`
	// Groups of an original and its near copies, their documents, and
	// the duplicate pairs among them (every pair within a group).
	Groups  int64 `json:"groups"`
	Members int64 `json:"members"`
	Pairs   int64 `json:"pairs"`
	// Boilerplate documents, and the bytes of text in all.
	Boilerplate int64 `json:"boilerplate"`
	Bytes       int64 `json:"bytes"`
}

// SynthGroup returns the near-duplicate group of a synthetic document's id,
// or "" for a document that has no duplicate.
func SynthGroup(id string) string {
	_, g, ok := strings.Cut(id, "-g")
	if !ok {
		return ""
	}
	return g
}

// Synthesize generates the corpus and calls emit with every document, in
// order. Ids are "nNNNNNNNNN" for unique documents, "bNNNNNNNNN" for the
// boilerplate group and "nNNNNNNNNN-gGGGGGGGG" for members of near-duplicate
// group G. Near copies are emitted a random distance after their original
// (at most about 4,000 documents later), so memory stays bounded.
func Synthesize(cfg SynthConfig, emit func(*shards.Document) error) (SynthTruth, error) {
	if cfg.Words <= 0 {
		cfg.Words = 200
	}
	if cfg.NearFrac <= 0 {
		cfg.NearFrac = 0.13
	}
	if cfg.GroupMax <= 0 {
		cfg.GroupMax = 3
	}
	if cfg.Edits <= 0 {
		cfg.Edits = 2
	}
	if cfg.BoilerWords <= 0 {
		cfg.BoilerWords = 300
	}
	if cfg.Source == "" {
		cfg.Source = "synth"
	}
	r := rand.New(rand.NewSource(cfg.Seed))
	vocab := make([]string, 50000)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("%s%d", syllables[i%len(syllables)], i/len(syllables))
	}
	words := func(dst []string, n int) []string {
		for i := 0; i < n; i++ {
			dst = append(dst, vocab[r.Intn(len(vocab))])
		}
		return dst
	}
	boiler := words(nil, cfg.BoilerWords)
	// Each original starts a group with probability q; a group has 1 to
	// GroupMax copies (mean m), so copies make up m*q/(1+m*q) of the corpus.
	m := float64(1+cfg.GroupMax) / 2
	q := cfg.NearFrac / (m * (1 - cfg.NearFrac))
	var t SynthTruth
	type pending struct {
		at    int
		id    string
		words []string
	}
	var queue []pending
	n, group := 0, 0
	var sb strings.Builder
	out := func(id string, w []string) error {
		sb.Reset()
		for i, x := range w {
			if i > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(x)
		}
		d := &shards.Document{ID: id, Source: cfg.Source, URL: "https://synth.example/" + id, Text: sb.String()}
		t.Docs++
		t.Bytes += int64(len(d.Text))
		n++
		return emit(d)
	}
	boilerLeft := cfg.Boilerplate
	for n < cfg.Docs {
		if len(queue) > 0 && (queue[0].at <= n || len(queue) >= cfg.Docs-n) {
			p := queue[0]
			queue = queue[1:]
			if err := out(p.id, p.words); err != nil {
				return t, err
			}
			continue
		}
		left := cfg.Docs - n
		if boilerLeft > 0 && r.Intn(left) < boilerLeft {
			boilerLeft--
			t.Boilerplate++
			w := append(append(make([]string, 0, len(boiler)+cfg.BoilerWords/2), boiler...), words(nil, cfg.BoilerWords/2)...)
			if err := out(fmt.Sprintf("b%09d", n), w); err != nil {
				return t, err
			}
			continue
		}
		w := words(make([]string, 0, cfg.Words), cfg.Words)
		copies := 0
		if r.Float64() < q {
			copies = 1 + r.Intn(cfg.GroupMax)
		}
		if copies > 0 && left > copies+len(queue) {
			g := group
			group++
			t.Groups++
			t.Members += int64(1 + copies)
			t.Pairs += int64(copies+1) * int64(copies) / 2
			if err := out(fmt.Sprintf("n%09d-g%09d", n, g), w); err != nil {
				return t, err
			}
			for c := 0; c < copies; c++ {
				cw := append([]string(nil), w...)
				for e := 0; e < cfg.Edits; e++ {
					cw[r.Intn(len(cw))] = vocab[r.Intn(len(vocab))]
				}
				at := n + r.Intn(4000)
				p := pending{at: at, id: fmt.Sprintf("c%09d-%d-g%09d", n, c, g), words: cw}
				i := len(queue)
				for i > 0 && queue[i-1].at > at {
					i--
				}
				queue = append(queue, pending{})
				copy(queue[i+1:], queue[i:])
				queue[i] = p
			}
			continue
		}
		if err := out(fmt.Sprintf("n%09d", n), w); err != nil {
			return t, err
		}
	}
	return t, nil
}

// syllables make synthetic words look like words (and vary in length).
var syllables = []string{"ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "ve", "za", "bar", "del", "fin", "gor", "hul", "jex"}

// WriteSynth writes a synthetic corpus into tasks document-shard
// directories dir/00000, dir/00001, ... (consecutive slices of the
// documents) and its truth into dir/truth.json.
func WriteSynth(dir string, cfg SynthConfig, tasks int) (SynthTruth, error) {
	if tasks < 1 || cfg.Docs < 1 {
		return SynthTruth{}, fmt.Errorf("dedup synth: %d documents in %d directories", cfg.Docs, tasks)
	}
	per := (cfg.Docs + tasks - 1) / tasks
	var w *shards.DocWriter
	var cur string
	n := 0
	finish := func() error {
		if w == nil {
			return nil
		}
		if err := w.Close(); err != nil {
			return err
		}
		m := &shards.Manifest{Kind: shards.KindDocuments, Stage: "synth", Shards: w.Shards(), Totals: shards.SumShards(w.Shards())}
		w = nil
		return shards.WriteManifest(cur, m)
	}
	truth, err := Synthesize(cfg, func(d *shards.Document) error {
		if n%per == 0 {
			if err := finish(); err != nil {
				return err
			}
			cur = filepath.Join(dir, taskName(n/per))
			if err := os.MkdirAll(cur, 0o755); err != nil {
				return err
			}
			w = shards.NewDocWriter(cur, shards.DocWriterOptions{})
		}
		n++
		return w.Write(d)
	})
	if err == nil {
		err = finish()
	}
	if err != nil {
		if w != nil {
			w.Abort()
		}
		return truth, fmt.Errorf("dedup synth: %w", err)
	}
	b, err := json.MarshalIndent(truth, "", "  ")
	if err != nil {
		return truth, err
	}
	return truth, shards.WriteFileAtomic(filepath.Join(dir, "truth.json"), append(b, '\n'))
}
