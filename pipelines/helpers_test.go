package pipelines

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestMain lets the test binary act as smelt for the child processes the
// kill and Slurm tests start: "run RECIPE --run-dir DIR [--step S --rank N
// | --finalize] [--workers N]" runs like smelt run does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "run" {
		os.Exit(childRun(os.Args[2:]))
	}
	os.Exit(m.Run())
}

func childRun(args []string) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	runDir := fs.String("run-dir", "", "")
	step := fs.String("step", "", "")
	rank := fs.Int("rank", -1, "")
	finalize := fs.Bool("finalize", false, "")
	workers := fs.Int("workers", 0, "")
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "child: no recipe")
		return 2
	}
	recipe := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	ctx := context.Background()
	var err error
	switch {
	case *step != "" || *finalize:
		var run *Run
		if run, err = OpenExisting(*runDir, nil); err == nil {
			if *finalize {
				err = run.Finalize()
			} else {
				err = run.RunTask(ctx, *step, *rank, TaskOptions{Workers: *workers})
			}
		}
	default:
		var r *Recipe
		if r, err = LoadRecipe(recipe); err == nil {
			var run *Run
			if run, err = Open(*runDir, r, OpenOptions{Version: "test"}); err == nil {
				err = run.RunLocal(ctx, LocalOptions{Workers: *workers})
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

var (
	commonWords = strings.Fields(`the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were her she there one all we their has been if more when will would who so no out up into do than its only other new some could time these two may then first any now my such like our over man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three`)
	proseWords  = strings.Fields(`river morning garden letter window mountain evening children harbour quiet lantern meadow journey careful bright silver autumn winter gentle patient orchard village ancient promise whisper thunder forest island shadow cottage kettle blanket pebble shore meadow candle library chapter fellow neighbour weather honest curious`)
	spamWords   = strings.Fields(`click buy cheap free offer login subscribe casino bonus deal discount price cart shipping checkout download install account password limited now best top`)
)

// sentence draws a sentence of n words, mostly common English words with
// some from extra.
func sentence(rng *rand.Rand, n int, extra []string) string {
	w := make([]string, n)
	for i := range w {
		if rng.IntN(3) == 0 {
			w[i] = extra[rng.IntN(len(extra))]
		} else {
			w[i] = commonWords[rng.IntN(len(commonWords))]
		}
	}
	s := strings.Join(w, " ")
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

func paragraph(rng *rand.Rand, sentences int, extra []string) string {
	var b strings.Builder
	for i := 0; i < sentences; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(sentence(rng, 8+rng.IntN(10), extra))
	}
	return b.String()
}

// writeCorpus writes a generated crawl (JSONL files: web-like documents,
// exact and near duplicates, short spam) and reference prose (text files)
// under dir, and returns the recipe that processes them.
func writeCorpus(t testing.TB, dir string, crawlFiles, docsPerFile int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	crawl := filepath.Join(dir, "crawl")
	ref := filepath.Join(dir, "ref")
	for _, d := range []string{crawl, ref} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var earlier []string
	for f := 0; f < crawlFiles; f++ {
		var b bytes.Buffer
		for i := 0; i < docsPerFile; i++ {
			var text string
			switch k := rng.IntN(10); {
			case k == 0 && len(earlier) > 0: // an exact duplicate
				text = earlier[rng.IntN(len(earlier))]
			case k == 1 && len(earlier) > 0: // a near duplicate: one word changed
				words := strings.Fields(earlier[rng.IntN(len(earlier))])
				words[rng.IntN(len(words))] = "changed"
				text = strings.Join(words, " ")
			case k == 2: // short spam
				text = sentence(rng, 4, spamWords)
			default:
				var paras []string
				for p := 0; p < 3+rng.IntN(4); p++ {
					extra := spamWords
					if rng.IntN(2) == 0 {
						extra = proseWords
					}
					paras = append(paras, paragraph(rng, 3+rng.IntN(4), extra))
				}
				text = strings.Join(paras, "\n\n")
				earlier = append(earlier, text)
			}
			line, _ := json.Marshal(map[string]string{"id": fmt.Sprintf("c%d-%d", f, i), "text": text,
				"url": fmt.Sprintf("https://site%d.example/page/%d", rng.IntN(20), i)})
			b.Write(line)
			b.WriteByte('\n')
		}
		if err := os.WriteFile(filepath.Join(crawl, fmt.Sprintf("part-%02d.jsonl", f)), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for f := 0; f < 3; f++ {
		var paras []string
		for p := 0; p < 40; p++ {
			paras = append(paras, paragraph(rng, 5, proseWords))
		}
		if err := os.WriteFile(filepath.Join(ref, fmt.Sprintf("book-%d.txt", f)), []byte(strings.Join(paras, "\n\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// testRecipe is a small recipe over writeCorpus's files: every step but
// train unless withTrain.
func testRecipe(withTrain bool) string {
	r := `name: test
shard_mb: 1
sources:
  - name: crawl
    inputs: [crawl/*.jsonl]
    format: jsonl
    weight: 0.7
    tasks: 3
    filter:
      rules: [gopher_repetition, gopher_quality, c4]
  - name: books
    inputs: [ref]
    format: text
    weight: 0.3
classifier:
  positives: [books]
  negatives: [crawl]
  apply_to: [crawl]
  keep: pareto:0.5
  bits: 14
dedup:
  exact: true
  minhash: true
tokenizer:
  train:
    vocab_size: 320
`
	if withTrain {
		r += `train:
  config: tiny
  steps: 4
  batch_size: 2
  seq_len: 16
  warmup: 1
  sample_tokens: 8
`
	}
	return r
}

// setupRun writes the corpus and the recipe into dir and returns the
// recipe's path.
func setupRun(t testing.TB, dir string, withTrain bool) string {
	t.Helper()
	writeCorpus(t, dir, 4, 50)
	path := filepath.Join(dir, "recipe.yaml")
	if err := os.WriteFile(path, []byte(testRecipe(withTrain)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// normFiles is shardFiles with the run directory's own path, which
// manifests record as the provenance of a step's inputs, replaced by
// RUN_DIR, to compare runs made in different directories.
func normFiles(t testing.TB, dir string) map[string][]byte {
	out := shardFiles(t, dir)
	for k, v := range out {
		out[k] = bytes.ReplaceAll(v, []byte(dir), []byte("RUN_DIR"))
	}
	return out
}

// shardFiles returns every file of the run directory's step outputs that
// must not depend on how the run went (shards, manifests, stats, models,
// tokenizer), relative to dir, with its content. Markers, logs, the train
// log (it holds timings) and run.json are left out.
func shardFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if info.IsDir() {
			if rel == StateDir || rel == "train" {
				return filepath.SkipDir
			}
			return nil
		}
		if rel == RunInfo || strings.Contains(filepath.Base(rel), ".tmp") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func requireSameFiles(t *testing.T, want, got map[string][]byte, what string) {
	t.Helper()
	var names []string
	for k := range want {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: %s missing", what, k)
			continue
		}
		if !bytes.Equal(want[k], g) {
			t.Errorf("%s: %s differs (%d vs %d bytes)", what, k, len(want[k]), len(g))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected file %s", what, k)
		}
	}
}
