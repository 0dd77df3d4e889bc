package main

import (
	"fmt"
	"io"
	"time"

	"github.com/smelt-dev/smelt/ingest"
	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/store"
	"github.com/spf13/cobra"
)

func newIngestCmd() *cobra.Command {
	var (
		out, source, format, textField, idField, langID string
		workers                                         int
		strict                                          bool
		shardMB                                         float64
		maxHTMLKB                                       int64
		extractTimeout, idleTimeout                     time.Duration
		allowRedirects                                  bool
	)
	cmd := &cobra.Command{
		Use:   "ingest INPUT... --out DIR|s3://BUCKET/PREFIX",
		Short: "Read crawls (WARC, WET, JSONL, Parquet, HTML, text) into document shards",
		Long: `ingest reads INPUTs (files, directories or globs; "-" for standard input;
a pipe such as <(zcat x.warc.gz) is read as a stream) and writes Arrow
document shards plus manifest.json and stats.json into --out. Symbolic links
in directories are followed to files; dangling links, links to directories
and FIFOs found in directories are left out and counted with a reason.

WARC response records with HTML are turned into text with go-trafilatura
(HTTP chunking and gzip decoded, the charset transcoded to UTF-8); WET
conversion records, JSONL, Parquet and plain text are taken as they are.
Every document gets a language and confidence: whatlanggo's by default,
or with --langid fasttext:PATH a fastText model's (lid.176.bin or .ftz, as
FineWeb, Dolma and cc_net use), its best label and probability in the
lang and lang_score columns.

Broken records (corrupt gzip, truncated records, bad JSON, invalid UTF-8)
are reported with file and offset, counted, and skipped; the run goes on
and exits 0. --strict stops at the first one. HTML pages over --max-html-kb
are dropped as html/too_large (extraction time grows with the square of a
page's size), and a page whose extraction outlasts --extract-timeout as
extract/timeout. A killed run resumes when started again with the same
arguments; Ctrl-C or SIGTERM stops it within seconds (exit status 130 or
143), keeping everything up to its last checkpoint.

An INPUT may also be a URL: s3://BUCKET/KEY, s3://BUCKET/PREFIX/ (every
object under it, sorted), a key glob (s3://BUCKET/crawl/*.warc.gz), an
http(s):// URL, or a paths list (Common Crawl's warc.paths.gz, one path per
line: s3://commoncrawl/crawl-data/CC-MAIN-2024-10/warc.paths.gz, or
paths:LIST?base=BASE). URLs are streamed, retried and resumed with Range
requests. --out s3://... writes to a local staging directory
($SMELT_STAGING or ~/.cache/smelt/staging) and uploads it at the end, the
manifest last. S3 credentials and endpoint come from the AWS environment
(AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws/credentials, AWS_ENDPOINT_URL_S3).`,
		Example: `  smelt ingest crawl/*.warc.gz --out shards/cc --source cc
  smelt ingest data.jsonl.zst --out shards/web --text-field content
  smelt ingest s3://commoncrawl/crawl-data/CC-MAIN-2024-10/warc.paths.gz --out s3://my-bucket/cc/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			if maxHTMLKB <= 0 {
				return fmt.Errorf("--max-html-kb must be positive, got %d", maxHTMLKB)
			}
			fmtName, err := ingest.ParseFormat(format)
			if err != nil {
				return err
			}
			// The URL read policy goes with this run's context, not into
			// package variables another run in the process would share.
			ctx := store.WithPolicy(cmd.Context(), store.Policy{IdleTimeout: idleTimeout, AllowRedirectHosts: allowRedirects})
			files, skipped, err := ingest.ExpandInputsSkipped(ctx, args)
			if err != nil {
				return err
			}
			var total int64
			for _, f := range files {
				if info, err := store.Stat(ctx, f); err == nil {
					total += info.Size
				}
			}
			lid, err := parseLangID(langID)
			if err != nil {
				return err
			}
			o, err := remoteOutput(cmd.Context(), out)
			if err != nil {
				return err
			}
			p := newProgress(cmd.ErrOrStderr(), "ingest", total)
			st, err := ingest.Run(ctx, files, o.Dir, ingest.Options{
				LangID:      lid,
				Source:      source,
				Format:      fmtName,
				Workers:     workers,
				TargetBytes: mustShardBytes(shardMB),
				Strict:      strict,
				Skipped:     skipped,
				Reader: ingest.ReaderOptions{TextField: textField, IDField: idField,
					MaxHTMLBytes: maxHTMLKB << 10, ExtractTimeout: extractTimeout},
				Progress: func(pr ingest.Progress) {
					p.update(pr.Bytes, pr.Records, pr.Documents)
				},
			})
			p.finish(err)
			if err == nil {
				err = o.Publish(cmd.Context())
			}
			if err != nil {
				return o.Err(err)
			}
			return printSummary(cmd.OutOrStdout(), st)
		},
	}
	f := cmd.Flags()
	f.StringVar(&langID, "langid", "whatlanggo", "language identification: whatlanggo, or fasttext:PATH for a fastText model such as lid.176.ftz")
	f.StringVarP(&out, "out", "o", "", "output directory for document shards, or an s3:// URL (required)")
	f.StringVar(&source, "source", "web", "source name recorded in every document")
	f.StringVar(&format, "format", "auto", "input format: auto|warc|wet|jsonl|parquet|html|text")
	f.IntVarP(&workers, "workers", "j", 0, "parallel workers (0 = all cores); output is the same for any value")
	f.BoolVar(&strict, "strict", false, "fail on the first broken record instead of counting it")
	f.StringVar(&textField, "text-field", "", "JSONL/Parquet: name of the text field (default \"text\")")
	f.StringVar(&idField, "id-field", "", "JSONL/Parquet: name of the id field (default \"id\")")
	f.Float64Var(&shardMB, "shard-mb", 64, shardMBUsage)
	f.Int64Var(&maxHTMLKB, "max-html-kb", ingest.DefaultMaxHTMLBytes>>10, "largest HTML page handed to extraction, in KiB; larger pages are dropped as html/too_large")
	f.DurationVar(&extractTimeout, "extract-timeout", ingest.DefaultExtractTimeout, "time budget of one page's extraction; slower pages are dropped as extract/timeout (negative: none)")
	f.DurationVar(&idleTimeout, "idle-timeout", store.DefaultIdleTimeout, "URLs: drop a connection that sends nothing for this long and resume with a range request (bounded retries; 0: wait forever)")
	f.BoolVar(&allowRedirects, "allow-redirects", false, "URLs: follow redirects to other hosts (by default only to the same scheme and host; never to loopback, link-local or private addresses the input did not name)")
	return cmd
}

// printSummary prints the one-paragraph result of a stage run.
func printSummary(w io.Writer, st *shards.Stats) error {
	dropped, errs := shards.SumCounts(st.Dropped), shards.SumCounts(st.Errors)
	var err error
	if st.Stage == "classifier" {
		// The classifier step trains a model: it reads documents and
		// writes none, so "kept" would say nothing true.
		_, err = fmt.Fprintf(w, "%s: trained on %d documents (%s), %d errors\n",
			st.Stage, st.In.Docs, humanBytes(st.In.Bytes), errs.Docs)
	} else {
		_, err = fmt.Fprintf(w, "%s: %d in (%s), %d kept (%s), %d dropped, %d errors\n",
			st.Stage, st.In.Docs, humanBytes(st.In.Bytes), st.Out.Docs, humanBytes(st.Out.Bytes), dropped.Docs, errs.Docs)
	}
	for _, s := range st.ErrorSamples[:min(5, len(st.ErrorSamples))] {
		fmt.Fprintf(w, "  error: %s\n", s)
	}
	if len(st.ErrorSamples) > 5 {
		fmt.Fprintf(w, "  ... (see smelt stats)\n")
	}
	return err
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
