package main

import (
	"fmt"
	"log/slog"
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
		threshold           float64
		seed                uint64
		shardMB             int64
	)
	def := dedup.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "dedup DIR... --out DIR",
		Short: "Drop exact and near-duplicate documents (MinHash LSH), optionally against a persistent store",
		Long: `dedup reads finished document-shard directories and writes the kept
documents to --out and the duplicates to --out/dropped, each with the
reason (dedup:exact, dedup:url or dedup:minhash), the estimated similarity
and the id of the document it duplicates. A document id that occurs again
later in the input (the same dump ingested twice) takes part once; its later
copies are dropped as dedup:repeated_id.

Exact: the xxh3-128 hash of the text after Unicode NFC, case folding and
collapsing white space. Near: MinHash signatures over word n-grams, LSH
bands (github.com/ekzhu/minhash-lsh), every candidate pair verified by its
estimated Jaccard similarity against --threshold, clusters by union-find,
one survivor per cluster (highest quality, then smallest id).

Without --exact, --minhash or --url both exact and MinHash dedup run.
--bands/--rows default to 14 x 8; with only --threshold given they are
derived from it (the largest rows per band that still catch a pair at the
threshold with probability 0.9).

--store PATH keeps the hashes and signatures of every kept document in a
Badger database, so that the next crawl is deduplicated against all of
them. A killed run resumes when started again with the same arguments.
dedup_clusters.json in --out lists the largest clusters.`,
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
			opt := def
			if exact || minhash || url {
				opt.Exact, opt.MinHash, opt.URL = exact, minhash, url
			}
			opt.NGram, opt.Perms, opt.Threshold, opt.Seed, opt.Scope = ngram, perms, threshold, seed, scope
			opt.Bands, opt.Rows = bands, rows
			f := cmd.Flags()
			if f.Changed("threshold") && !f.Changed("bands") && !f.Changed("rows") {
				opt.Bands, opt.Rows = 0, 0
			}
			last := time.Now()
			st, res, err := dedup.Run(cmd.Context(), dedup.Config{
				Inputs:      args,
				Out:         out,
				Workers:     workers,
				TargetBytes: shardMB << 20,
				Options:     opt,
				StorePath:   store,
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
			_, err = fmt.Fprintf(w, "; %d clusters, %d candidate pairs, %d verified (bands %dx%d)\n",
				len(res.Clusters), res.Summary.CandidatePairs, res.Summary.VerifiedPairs, res.Summary.Bands, res.Summary.Rows)
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
	f.Int64Var(&shardMB, "shard-mb", 64, "target uncompressed shard size in MiB")
	return cmd
}
