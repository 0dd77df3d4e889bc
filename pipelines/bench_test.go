package pipelines

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/smelt-dev/smelt/dedup"
	"github.com/smelt-dev/smelt/filter"
	"github.com/smelt-dev/smelt/ingest"
	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/tokenize"
)

const benchRecipe = `name: bench
shard_mb: 1
sources:
  - name: crawl
    inputs: [crawl/*.jsonl]
    format: jsonl
    weight: 1
    tasks: 1
    filter:
      rules: [gopher_repetition, gopher_quality, c4, fineweb_quality]
dedup: {}
tokenizer:
  name: gpt2
`

// BenchmarkRunnerVsDirect runs ingest -> filter -> dedup -> tokenize on a
// generated crawl twice per iteration: through the runner (plan, one task
// per step, markers, merged step directories) and by calling the stage
// functions directly, the peer; it reports both and their ratio, the
// runner's overhead.
func BenchmarkRunnerVsDirect(b *testing.B) {
	dir := b.TempDir()
	writeCorpus(b, dir, 8, 100)
	recipe := filepath.Join(dir, "bench.yaml")
	if err := os.WriteFile(recipe, []byte(benchRecipe), 0o644); err != nil {
		b.Fatal(err)
	}
	r, err := LoadRecipe(recipe)
	if err != nil {
		b.Fatal(err)
	}
	files, err := ExpandSource(r.Sources[0])
	if err != nil {
		b.Fatal(err)
	}
	var inBytes int64
	paths := make([]string, len(files))
	for i, f := range files {
		inBytes += f.Bytes
		paths[i] = f.Path
	}
	tok, err := tokenize.Get("gpt2")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var runner, direct time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		rd, dd := filepath.Join(dir, "runner"), filepath.Join(dir, "direct")
		os.RemoveAll(rd)
		os.RemoveAll(dd)
		b.StartTimer()

		start := time.Now()
		run, err := Open(rd, r, OpenOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if err := run.RunLocal(ctx, LocalOptions{Workers: 2}); err != nil {
			b.Fatal(err)
		}
		runner += time.Since(start)

		start = time.Now()
		target := r.ShardMB << 20
		if _, err := ingest.Run(ctx, paths, filepath.Join(dd, "ingest"), ingest.Options{Source: "crawl", Format: ingest.FormatJSONL, Workers: 2, TargetBytes: target}); err != nil {
			b.Fatal(err)
		}
		pipe, err := r.Sources[0].Filter.Pipeline()
		if err != nil {
			b.Fatal(err)
		}
		st := &filter.Stage{Pipeline: pipe}
		if _, err := st.Run(ctx, filter.RunOptions{Inputs: []string{filepath.Join(dd, "ingest")}, Out: filepath.Join(dd, "filter"), Workers: 2, TargetBytes: target,
			Settings: map[string]any{"rules": r.Sources[0].Filter}}); err != nil {
			b.Fatal(err)
		}
		if _, _, err := dedup.Run(ctx, dedup.Config{Inputs: []string{filepath.Join(dd, "filter")}, Out: filepath.Join(dd, "dedup"), Workers: 2, TargetBytes: target, Options: r.Dedup.Options}); err != nil {
			b.Fatal(err)
		}
		if _, err := shards.Tokenize(ctx, shards.TokenizeConfig{Inputs: []string{filepath.Join(dd, "dedup")}, Out: filepath.Join(dd, "tokens"), Encoder: tok, Source: "crawl", Workers: 2, TargetBytes: target}); err != nil {
			b.Fatal(err)
		}
		direct += time.Since(start)
	}
	b.ReportMetric(float64(inBytes)*float64(b.N)/runner.Seconds()/1e6, "runner-MB/s")
	b.ReportMetric(float64(inBytes)*float64(b.N)/direct.Seconds()/1e6, "direct-MB/s")
	b.ReportMetric(runner.Seconds()/direct.Seconds(), "runner/direct")
}

// BenchmarkMergeStep measures merging task outputs into a step directory
// (hard links, stats merge, manifest), per shard.
func BenchmarkMergeStep(b *testing.B) {
	dir := b.TempDir()
	const tasks, docs = 8, 400
	var inputs []string
	for t := 0; t < tasks; t++ {
		out := filepath.Join(dir, "tasks", string(rune('a'+t)))
		if err := os.MkdirAll(out, 0o755); err != nil {
			b.Fatal(err)
		}
		w := shards.NewDocWriter(out, shards.DocWriterOptions{TargetBytes: 16 << 10})
		st := shards.NewStats("bench")
		for i := 0; i < docs; i++ {
			d := &shards.Document{ID: string(rune('a'+t)) + "-" + string(rune('0'+i%10)) + time.Duration(i).String(), Source: "s",
				Text: "some text of a document that is long enough to fill shards " + time.Duration(i).String()}
			st.In.Add(shards.DocBytes(d))
			st.Keep(d)
			if err := w.Write(d); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		if err := shards.WriteStats(out, st); err != nil {
			b.Fatal(err)
		}
		if err := shards.WriteManifest(out, &shards.Manifest{Kind: shards.KindDocuments, Stage: "bench", Shards: w.Shards(), Totals: shards.SumShards(w.Shards())}); err != nil {
			b.Fatal(err)
		}
		inputs = append(inputs, out)
	}
	m, _ := shards.ReadManifest(inputs[0])
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := mergeShardDirs(filepath.Join(dir, "merged"), "fp", inputs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(tasks*len(m.Shards)), "µs/shard")
}
