package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/smelt-dev/smelt/lineage"
	"github.com/spf13/cobra"
)

func newLineageCmd() *cobra.Command {
	var (
		q      lineage.Query
		asJSON bool
		limit  int
	)
	cmd := &cobra.Command{
		Use:   "lineage RUN_DIR (--id ID | --url URL | --domain D)",
		Short: "Show where documents went in a run: every step's decision, dedup cluster, token shard row and export position",
		Long: `lineage answers "where did this page go" for a finished run: for each
document matching --id, --url or --domain (the domain and its subdomains),
its path through every step: the ingest input and record key, each filter
rule's decision and value, the dedup decision with the cluster's survivor
and members, the token shard and row, and its position in every export
(file, byte offset and length of its tokens, Megatron document index; the
row of a Parquet or JSONL file), or the takedown that removed it.

The first query builds an index in RUN_DIR/.smelt/lineage (one pass over
the run's shards); later queries read it. It is rebuilt when the run's
manifests, exports or takedowns change.`,
		Example: `  smelt lineage runs/demo --url https://example.com/page
  smelt lineage runs/demo --domain example.com --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n := 0
			for _, s := range []string{q.ID, q.URL, q.Domain} {
				if s != "" {
					n++
				}
			}
			if n != 1 {
				return fmt.Errorf("give exactly one of --id, --url, --domain")
			}
			start := time.Now()
			ix, err := lineage.Open(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer ix.Close()
			// Each document is printed as it is looked up: a query that
			// matches a whole run does not hold every lineage at once.
			out := bufio.NewWriter(cmd.OutOrStdout())
			docs := 0
			err = ix.Each(q, limit, func(l *lineage.Lineage) error {
				if asJSON {
					// The list json.Encoder with a two-space indent
					// writes, one element at a time.
					b, err := json.MarshalIndent(l, "  ", "  ")
					if err != nil {
						return err
					}
					sep := ",\n  "
					if docs == 0 {
						sep = "[\n  "
					}
					out.WriteString(sep)
					out.Write(b)
				} else {
					writeLineage(out, l)
				}
				docs++
				return nil
			})
			if err != nil {
				return err
			}
			if asJSON {
				if docs == 0 {
					out.WriteString("[]\n")
				} else {
					out.WriteString("\n]\n")
				}
				return out.Flush()
			}
			if err := out.Flush(); err != nil {
				return err
			}
			if docs == 0 {
				return exitError{code: 1, err: fmt.Errorf("no document in %s matches", args[0])}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d document(s) in %v\n", docs, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	cmd.Flags().StringVar(&q.ID, "id", "", "document id")
	cmd.Flags().StringVar(&q.URL, "url", "", "exact URL")
	cmd.Flags().StringVar(&q.Domain, "domain", "", "host name: the host and its subdomains")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (a list of documents with their events)")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many documents (0 = all)")
	return cmd
}

// writeLineage prints one document's path, a line per step.
func writeLineage(w io.Writer, l *lineage.Lineage) {
	fmt.Fprintf(w, "%s  %s\n  status: %s\n", l.ID, l.URL, l.Status)
	for _, e := range l.Events {
		var b strings.Builder
		fmt.Fprintf(&b, "  %-22s ", e.Step)
		switch {
		case e.Kind == "takedown":
			fmt.Fprintf(&b, "taken down %s (%s)", e.Time, e.Value)
		case e.Kind == "export" && e.Length > 0:
			fmt.Fprintf(&b, "%s %s bytes %d+%d (document %d)", e.Format, e.File, e.ByteOffset, e.Length, e.DocIndex)
		case e.Kind == "export":
			fmt.Fprintf(&b, "%s %s row %d", e.Format, e.File, e.DocIndex)
		case e.Kind == "tokenize":
			fmt.Fprintf(&b, "%s/%s row %d: %d tokens at token %d", e.Dir, e.Shard, e.Row, e.Tokens, e.TokenOffset)
		default:
			if e.Kept {
				fmt.Fprintf(&b, "kept     %s/%s row %d", e.Dir, e.Shard, e.Row)
			} else {
				fmt.Fprintf(&b, "DROPPED  %s %s", e.Reason, e.Value)
				if e.DupOf != "" {
					fmt.Fprintf(&b, " duplicate of %s", e.DupOf)
				}
				fmt.Fprintf(&b, " (%s/%s row %d)", e.Dir, e.Shard, e.Row)
			}
			if e.Input != "" {
				fmt.Fprintf(&b, " from %s record %s", e.Input, e.RecordKey)
			}
			if e.Quality != nil {
				fmt.Fprintf(&b, " quality %.4f", *e.Quality)
			}
			for _, r := range e.Rules {
				fmt.Fprintf(&b, "\n  %-22s   %s: %s %s", "", r.Rule, r.Decision, r.Value)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	if len(l.Cluster) > 0 {
		fmt.Fprintf(w, "  dedup cluster: survivor of %s\n", strings.Join(l.Cluster, ", "))
	}
}
