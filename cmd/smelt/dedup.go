package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sort"
	"time"

	"github.com/smelt-dev/smelt/dedup"
	"github.com/spf13/cobra"
)

func newDedupCmd() *cobra.Command {
	var (
		out, store, scope   string
		exact, minhash, url bool
		ngram, perms, bands int
		rows, workers       int
		buckets, clusterN   int
		bufferMB            int64
		work, verify        string
		threshold           float64
		seed                uint64
		shardMB             float64
		memLimitMB          int64
	)
	def := dedup.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "dedup DIR... --out DIR",
		Short: "Drop exact and near-duplicate documents (MinHash LSH), optionally against a persistent store",
		Long: `dedup reads finished document-shard directories and writes the kept
documents to --out and the duplicates to --out/dropped, each with the
reason (dedup:exact, dedup:url or dedup:minhash), the estimated similarity
to the document kept and that document's id (dup_of). Documents are told
apart by their place in the input, never by their ids: two documents with
the same id are two documents, and only their texts decide.

It runs the steps a recipe runs as separate tasks, in one process: sketch
(one task per input directory: signatures and key records sorted into
--bucket-tasks partitions), bucket (a k-way merge per partition into
verified candidate pairs; a bucket shared by k documents costs O(k)
comparisons), cluster (union-find over the pairs, one survivor per
cluster) and route. Memory is bounded by --buffer-mb and grows with the
number of duplicates, not of documents; the output does not depend on
--bucket-tasks or --workers. --cluster-tasks N cuts the cluster step into
N partitions: connected components in rounds (large-star/small-star), a
join, a decision task per partition and a merge, each task holding its
partition's share of the clustered documents; the output (shards,
decisions, stats) is byte-identical for any N.

Exact: the xxh3-128 hash of the text after Unicode NFC, case folding and
collapsing white space (bytes that are not valid UTF-8 are hashed as
they are). Near: MinHash signatures over word n-grams, LSH bands, every
candidate pair verified by its
estimated Jaccard similarity against --threshold, clusters by union-find,
one survivor per cluster (kept by an earlier run, then highest quality,
then smallest id). --verify survivor takes a cluster's members in that
order and drops one only when it is an exact copy of, or at least
--threshold similar to, a member already kept: no two kept members are
similar, and a chain of near copies cannot drop a document far from every
kept one. --url drops documents whose URL a kept document has (dedup:url);
a URL match never joins texts.

Without --exact, --minhash or --url both exact and MinHash dedup run.
--bands/--rows default to 14 x 8; with only --threshold given they are
derived from it (the largest rows per band that still catch a pair at the
threshold with probability 0.9).

--store PATH keeps the kept documents' hashes and signatures as one
immutable segment per run, catalogued in a Badger database, so that the next
crawl is deduplicated against all of them; any number of runs read it while
one commits, and a run that decided before another committed decides again.
A killed run resumes when started again with the same arguments.
dedup_clusters.json in --out lists the largest clusters, and
dedup_decisions/ the decision of every document in a cluster (one JSON
lines file per input). smelt dedup store ls|rm|compact|add maintains a
store.

smelt dedup synth writes a synthetic corpus with known near-duplicate
groups and a boilerplate group, for benchmarks (an input directory named
"synth" is given as ./synth).`,
		Example: `  smelt dedup shards/cc --out shards/cc-dedup
  smelt dedup shards/cc-2024 --out shards/cc-2024-dedup --store dedup.store --threshold 0.7`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			args, remote, err := remoteIO(cmd.Context(), args, out) // s3:// inputs and --out
			if err != nil {
				return err
			}
			out = remote.Dir
			if _, set := os.LookupEnv("GOMEMLIMIT"); !set && memLimitMB > 0 {
				// A soft limit on the heap: the Go runtime otherwise lets
				// it grow to twice the live data before collecting.
				debug.SetMemoryLimit(memLimitMB << 20)
			}
			opt := def
			if exact || minhash || url {
				opt.Exact, opt.MinHash, opt.URL = exact, minhash, url
			}
			opt.NGram, opt.Perms, opt.Threshold, opt.Seed, opt.Scope = ngram, perms, threshold, seed, scope
			opt.Bands, opt.Rows, opt.Verify = bands, rows, verify
			f := cmd.Flags()
			if f.Changed("threshold") && !f.Changed("bands") && !f.Changed("rows") {
				opt.Bands, opt.Rows = 0, 0
			}
			last := time.Now()
			st, res, err := dedup.Run(cmd.Context(), dedup.Config{
				Inputs:       args,
				Out:          out,
				Workers:      workers,
				BucketTasks:  buckets,
				ClusterTasks: clusterN,
				BufferBytes:  bufferMB << 20,
				Work:         work,
				TargetBytes:  mustShardBytes(shardMB),
				Options:      opt,
				StorePath:    store,
				Progress: func(pass string, docs, bytes, totalDocs, totalBytes int64) {
					if now := time.Now(); now.Sub(last) >= 5*time.Second || docs == totalDocs {
						last = now
						slog.Info("dedup progress", "pass", pass, "docs", docs, "of", totalDocs,
							"pct", fmt.Sprintf("%.1f", 100*float64(bytes)/float64(max(totalBytes, 1))))
					}
				},
			})
			if err == nil {
				err = remote.Publish(cmd.Context())
			}
			if err != nil {
				return remote.Err(err)
			}
			w := cmd.OutOrStdout()
			var dropped int64
			reasons := make([]string, 0, len(st.Dropped))
			for r, c := range st.Dropped {
				dropped += c.Docs
				reasons = append(reasons, r)
			}
			sort.Strings(reasons)
			fmt.Fprintf(w, "dedup: %d in, %d kept, %d dropped", st.In.Docs, st.Out.Docs, dropped)
			for _, r := range reasons {
				fmt.Fprintf(w, ", %s %d", r, st.Dropped[r].Docs)
			}
			_, err = fmt.Fprintf(w, "; %d clusters, %d candidate pairs, %d verified (bands %dx%d)",
				res.Summary.Clusters, res.Summary.CandidatePairs, res.Summary.VerifiedPairs, res.Summary.Bands, res.Summary.Rows)
			if err == nil && store != "" {
				_, err = fmt.Fprintf(w, "; store held %d, matched %d exact, %d url, %d minhash",
					res.Summary.StoreDocuments, res.Summary.StoreExact, res.Summary.StoreURL, res.Summary.StoreMinHash)
			}
			if err == nil && res.Summary.VerifyKept > 0 {
				_, err = fmt.Fprintf(w, "; %d kept by verify survivor", res.Summary.VerifyKept)
			}
			if err == nil {
				_, err = fmt.Fprintln(w)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "out", "o", "", "output directory (required)")
	f.BoolVar(&exact, "exact", false, "exact dedup of normalised text")
	f.BoolVar(&minhash, "minhash", false, "near-duplicate dedup with MinHash LSH")
	f.BoolVar(&url, "url", false, "drop documents whose URL was already kept")
	f.IntVar(&ngram, "ngram", def.NGram, "MinHash shingle size in words")
	f.IntVar(&perms, "perms", def.Perms, "MinHash permutations (64-bit values)")
	f.IntVar(&bands, "bands", def.Bands, "LSH bands")
	f.IntVar(&rows, "rows", def.Rows, "LSH rows per band")
	f.Float64Var(&threshold, "threshold", def.Threshold, "estimated Jaccard similarity at or above which a pair is a duplicate")
	f.Uint64Var(&seed, "seed", def.Seed, "seed of the MinHash permutations (runs sharing a store must share it)")
	f.StringVar(&scope, "scope", def.Scope, "dedup scope: global|source")
	f.StringVar(&store, "store", "", "persistent Badger store of kept documents for incremental dedup across runs")
	f.IntVarP(&workers, "workers", "j", 0, "parallel workers (0 = all cores); output is the same for any value")
	f.Float64Var(&shardMB, "shard-mb", 64, shardMBUsage)
	f.IntVar(&buckets, "bucket-tasks", 4, "bucket partitions of the key space; output is the same for any value")
	f.IntVar(&clusterN, "cluster-tasks", 1, "partitions of the cluster step (components in rounds, then a decision task per partition); output is the same for any value")
	f.Int64Var(&bufferMB, "buffer-mb", 64, "records each sketch task holds in memory before writing a sorted run (MiB)")
	f.StringVar(&work, "work", "", "directory for the steps' intermediate files (default OUT/"+dedup.WorkDirName+", removed at the end)")
	f.Int64Var(&memLimitMB, "mem-limit-mb", 200, "soft limit of the Go heap in MiB (as GOMEMLIMIT, which overrides it; 0 = none)")
	f.StringVar(&verify, "verify", "", "survivor: drop a near duplicate only when it is similar enough to the survivor itself")
	cmd.AddCommand(newDedupSynthCmd(), newDedupStoreCmd())
	return cmd
}

func newDedupSynthCmd() *cobra.Command {
	var (
		out                  string
		docs, tasks, boiler  int
		words, edits, groupM int
		near                 float64
		seed                 int64
	)
	cmd := &cobra.Command{
		Use:   "synth --out DIR --docs N",
		Short: "Write a synthetic corpus with known near-duplicate groups, for dedup benchmarks",
		Long: `synth writes --docs documents of --words random words into --tasks
document-shard directories DIR/00000, DIR/00001, ... and DIR/truth.json.
A fraction --near of them are near copies (--edits words changed, about 0.9
similar) of an original, in groups of up to --group-max copies; ids of group
members end in -gNNNNNNNNN, the group. --boilerplate documents share a
300-word boilerplate and add 150 words each (similar about 0.5 to each other,
none a duplicate).`,
		Example: `  smelt dedup synth --out synth --docs 200000 --tasks 8
  smelt dedup synth/0000* --out synth-dedup`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" || docs <= 0 || tasks <= 0 {
				return fmt.Errorf("--out, --docs > 0 and --tasks > 0 are required")
			}
			truth, err := dedup.WriteSynth(out, dedup.SynthConfig{Docs: docs, Words: words, NearFrac: near, GroupMax: groupM,
				Edits: edits, Boilerplate: boiler, Seed: seed}, tasks)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "synth: %d documents (%.1f MB of text) in %d directories, %d near-duplicate groups (%d documents, %d pairs), %d boilerplate documents\n",
				truth.Docs, float64(truth.Bytes)/1e6, tasks, truth.Groups, truth.Members, truth.Pairs, truth.Boilerplate)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "out", "o", "", "output directory (required)")
	f.IntVar(&docs, "docs", 0, "documents in all (required)")
	f.IntVar(&tasks, "tasks", 8, "shard directories (sketch tasks) to cut them into")
	f.IntVar(&words, "words", 200, "words per document")
	f.Float64Var(&near, "near", 0.13, "fraction of documents that are near copies")
	f.IntVar(&groupM, "group-max", 3, "most near copies of one original")
	f.IntVar(&edits, "edits", 2, "words changed in each near copy")
	f.IntVar(&boiler, "boilerplate", 0, "documents sharing a 300-word boilerplate")
	f.Int64Var(&seed, "seed", 1, "random seed")
	return cmd
}
