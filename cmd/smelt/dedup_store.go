package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/smelt-dev/smelt/dedup"
	"github.com/spf13/cobra"
)

// newDedupStoreCmd is `smelt dedup store ls|rm|compact|add STORE`.
func newDedupStoreCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "List, remove, merge or add segments of a dedup store",
		Long: `A dedup store (--store) holds one segment per run that committed to it:
the documents that run kept. Later runs drop their duplicates of them.

  ls STORE            list the segments: generation, date, documents kept,
                      tasks, the run and its input directories
  rm STORE GEN...     remove segments: later runs no longer deduplicate
                      against their documents (after deleting a crawl's
                      output, before running a corrected crawl again)
  compact STORE       merge all segments into one, so that runs open fewer
                      files (refused while a run uses the store)
  add STORE DIR...    add every document of the directories as a segment,
                      deciding nothing, so that their copies never come back

rm and compact are safe while runs use the store: the catalogue changes at
once (a run that read the removed segment decides again before it
commits) and files are deleted only when no run uses the store; rm says
when it left them for a later rm or compact.`,
		Example: `  smelt dedup store ls dedup.store
  smelt dedup store rm dedup.store 3
  smelt dedup store compact dedup.store`,
	}
	ls := &cobra.Command{
		Use:   "ls STORE",
		Short: "List a dedup store's segments",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			segs, err := dedup.ListSegments(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(w, "GEN\tCREATED\tKEPT\tTASKS\tRUN\tINPUTS")
			var docs int64
			for _, s := range segs {
				run := s.Run
				if len(s.Runs) > 0 {
					run = fmt.Sprintf("%s (%d runs)", s.Run, len(s.Runs))
				} else if len(run) > 16 {
					run = run[:16]
				}
				in := strings.Join(s.Inputs, ",")
				if len(s.Inputs) > 3 {
					in = strings.Join(s.Inputs[:3], ",") + fmt.Sprintf(",... (%d)", len(s.Inputs))
				}
				fmt.Fprintf(w, "%d\t%s\t%d\t%d\t%s\t%s\n", s.Gen, s.Created.Format("2006-01-02 15:04"), s.Kept, len(s.Rows), run, in)
				docs += s.Kept
			}
			if err := w.Flush(); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%d segments, %d documents\n", len(segs), docs)
			return err
		},
	}
	rm := &cobra.Command{
		Use:   "rm STORE GEN...",
		Short: "Remove segments from a dedup store",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var gens []uint64
			for _, a := range args[1:] {
				g, err := strconv.ParseUint(a, 10, 64)
				if err != nil {
					return fmt.Errorf("segment %q: want a generation number (smelt dedup store ls)", a)
				}
				gens = append(gens, g)
			}
			m, err := dedup.RemoveSegments(cmd.Context(), args[0], gens)
			if err != nil {
				return err
			}
			return printMaintenance(cmd, m)
		},
	}
	compact := &cobra.Command{
		Use:   "compact STORE",
		Short: "Merge a dedup store's segments into one",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := dedup.CompactStore(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printMaintenance(cmd, m)
		},
	}
	def := dedup.DefaultOptions()
	opt := def
	add := &cobra.Command{
		Use:   "add STORE DIR...",
		Short: "Add documents to a dedup store so that their copies are dropped later",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			if f.Changed("threshold") && !f.Changed("bands") && !f.Changed("rows") {
				opt.Bands, opt.Rows = 0, 0
			}
			seg, err := dedup.AddToStore(cmd.Context(), args[0], args[1:], opt, "")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "store %s: segment %d, %d documents added\n", args[0], seg.Gen, seg.Kept)
			return err
		},
	}
	f := add.Flags()
	f.BoolVar(&opt.Exact, "exact", def.Exact, "the store's exact dedup setting")
	f.BoolVar(&opt.MinHash, "minhash", def.MinHash, "the store's MinHash setting")
	f.BoolVar(&opt.URL, "url", def.URL, "the store's URL dedup setting")
	f.IntVar(&opt.NGram, "ngram", def.NGram, "MinHash shingle size in words")
	f.IntVar(&opt.Perms, "perms", def.Perms, "MinHash permutations")
	f.IntVar(&opt.Bands, "bands", def.Bands, "LSH bands")
	f.IntVar(&opt.Rows, "rows", def.Rows, "LSH rows per band")
	f.Float64Var(&opt.Threshold, "threshold", def.Threshold, "similarity threshold")
	f.Uint64Var(&opt.Seed, "seed", def.Seed, "seed of the MinHash permutations")
	f.StringVar(&opt.Scope, "scope", def.Scope, "dedup scope: global|source")
	cmd.AddCommand(ls, rm, compact, add)
	return cmd
}

func printMaintenance(cmd *cobra.Command, m *dedup.Maintenance) error {
	w := cmd.OutOrStdout()
	var docs int64
	for _, s := range m.Removed {
		docs += s.Kept
	}
	fmt.Fprintf(w, "removed %d segments (%d documents)", len(m.Removed), docs)
	if m.Added != nil {
		fmt.Fprintf(w, ", added segment %d (%d documents, %d runs)", m.Added.Gen, m.Added.Kept, len(m.Added.Runs))
	}
	fmt.Fprintf(w, "; %d segment directories deleted", m.Purged)
	if len(m.Busy) > 0 {
		fmt.Fprintf(w, "; files left while the store is in use by %s: a later rm or compact deletes them", strings.Join(m.Busy, "; "))
	}
	_, err := fmt.Fprintln(w)
	return err
}
