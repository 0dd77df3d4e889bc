package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/smelt-dev/smelt/filter"
	"github.com/spf13/cobra"
)

func newDecontamCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "decontam",
		Short: "Build the n-gram index of evaluation sets that the decontam filter rule removes from training data",
	}
	cmd.AddCommand(newDecontamIndexCmd(), newDecontamInfoCmd())
	return cmd
}

func newDecontamIndexCmd() *cobra.Command {
	var (
		out, fields, idField, tmp string
		n                         int
	)
	cmd := &cobra.Command{
		Use:   "index EVAL... --out INDEX",
		Short: "Index the normalised n-grams of evaluation sets (files or directories)",
		Long: `index reads evaluation sets and writes an index of their hashed n-grams
(13 by default, as GPT-3; 4 to 64), sorted and verified when the filter
opens it, that records which eval set and record each n-gram came from.

Each EVAL is a file or a directory (read recursively, in name order), named
after its base name or given as NAME=PATH. JSONL (.jsonl, .json, .ndjson)
records are read from --fields (several: "question,answers"; a field may be
a list, such as answer choices) with --id-field as the record id (else the
line number); Parquet (.parquet) columns likewise (else the row number);
any other file is plain text, one record per non-empty line. gzip and zstd
are decompressed. Text is normalised as the filter does: lower case, every
run of punctuation and white space folded to one separator.

Use the index in a recipe or filter config:
  rules: [decontam, ...]
  decontam: {index: INDEX, policy: drop}   # or gpt3`,
		Example: `  smelt decontam index mmlu=data/mmlu.jsonl --fields question,choices --out evals.dcx
  smelt decontam index wikitext2_test.txt lambada/ --out evals.dcx --n 13`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("decontam index: --out is required")
			}
			if n < filter.MinNGram || n > filter.MaxNGram {
				return fmt.Errorf("decontam index: --n %d: want %d..%d", n, filter.MinNGram, filter.MaxNGram)
			}
			b := &filter.IndexBuilder{N: n, TmpDir: tmp}
			defer b.Close()
			opt := filter.EvalOptions{IDField: idField}
			for _, f := range strings.Split(fields, ",") {
				if f = strings.TrimSpace(f); f != "" {
					opt.Fields = append(opt.Fields, f)
				}
			}
			start := time.Now()
			var bad int64
			for _, a := range args {
				name, path := filter.EvalSetName(a)
				st, err := filter.AddEvalSet(cmd.Context(), b, name, path, opt)
				if err != nil {
					return err
				}
				for _, e := range st.Errors {
					slog.Warn("bad eval record", "set", name, "err", e)
				}
				bad += st.Bad
				slog.Info("eval set read", "set", name, "files", st.Files, "records", st.Records, "bad", st.Bad)
			}
			sets, err := b.Write(out)
			if err != nil {
				return err
			}
			fi, err := os.Stat(out)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			printSets(w, sets)
			fmt.Fprintf(w, "wrote %s: %d n-grams (n=%d), %d bytes, %d bad records skipped, in %s\n",
				out, b.Entries(), n, fi.Size(), bad, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "out", "o", "", "index file to write")
	f.IntVar(&n, "n", filter.DefaultNGram, "n-gram length in words")
	f.StringVar(&fields, "fields", "text", "comma-separated JSONL fields / Parquet columns holding the record's text")
	f.StringVar(&idField, "id-field", "id", "JSONL field / Parquet column holding the record id")
	f.StringVar(&tmp, "tmp", "", "directory for the sorted runs spilled while indexing (default: the system's)")
	return cmd
}

func newDecontamInfoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "info INDEX",
		Short: "Print an index's eval sets and n-gram counts",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			x, err := filter.OpenIndex(args[0])
			if err != nil {
				return err
			}
			defer x.Close()
			printSets(cmd.OutOrStdout(), x.Sets)
			fmt.Fprintf(cmd.OutOrStdout(), "%d n-grams (n=%d), %d records, id %s\n", x.Entries(), x.N, x.Records(), x.ID)
			return nil
		},
	}
}

func printSets(w io.Writer, sets []filter.IndexSet) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "eval set\trecords\tshorter than n\tn-grams\t")
	for _, s := range sets {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t\n", s.Name, s.Records, s.Short, s.NGrams)
	}
	tw.Flush()
}
