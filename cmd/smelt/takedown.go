package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/smelt-dev/smelt/lineage"
	"github.com/spf13/cobra"
)

func newTakedownCmd() *cobra.Command {
	var (
		urls, domains, ids string
		withDups           bool
	)
	cmd := &cobra.Command{
		Use:   "takedown RUN_DIR --urls FILE | --domains FILE | --ids FILE [--with-duplicates]",
		Short: "Remove documents (by URL, domain or id) from every output of a run without rebuilding it",
		Long: `takedown removes the documents listed in FILE (one URL, domain or id a
line; "#" starts a comment) from every output of a finished run: the
document shards of every step and their dropped/ side outputs, the token
shards, the mix and every export (Megatron, nanoGPT, llm.c, Parquet,
JSONL). --with-duplicates also removes the members of their dedup
clusters (the same or nearly the same text at other URLs).

Only the shard directories and exports that hold a removed document are
rewritten; token shards are rebuilt from their own tokens, nothing is
encoded again, and the result is byte-identical to tokenizing and
exporting the reduced documents. Manifests and stats are updated; the
audit record (request, matched ids, every changed file with old and new
sha256, time) is appended to RUN_DIR/takedown.json, and the documents to
the takedown list (takedown-list.jsonl in the recipe's dedup store, else
in RUN_DIR). With a dedup store, the removed documents' text is also added
to it as a segment, so a later run with the store drops their copies at
any URL as duplicates of a taken-down document; a later run's optout rule
with "takedowns: [STORE/takedown-list.jsonl]" drops them by id and URL
(smelt run warns when the recipe does not). A takedown killed at any point finishes when run again with
the same request; one holds the run's lock.`,
		Example: `  smelt takedown runs/cc --urls removal-requests.txt
  smelt takedown runs/cc --domains publishers.txt --with-duplicates`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req lineage.Request
			n := 0
			for _, f := range []struct {
				path string
				into *[]string
			}{{urls, &req.URLs}, {domains, &req.Domains}, {ids, &req.IDs}} {
				if f.path == "" {
					continue
				}
				n++
				lines, err := readLines(f.path)
				if err != nil {
					return err
				}
				*f.into = lines
			}
			if n == 0 {
				return fmt.Errorf("give --urls, --domains or --ids FILE")
			}
			req.WithDuplicates = withDups
			rec, err := lineage.Takedown(cmd.Context(), args[0], req, lineage.TakedownOptions{})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "took down %d document(s); %d file(s) changed; audit record in %s\n",
				len(rec.Matched), len(rec.Files), lineage.TakedownFile)
			if len(rec.Matched) == 0 {
				return nil
			}
			for _, st := range rec.Store {
				fmt.Fprintf(cmd.OutOrStdout(), "dedup store %s: segment %d holds the text of %d of them\n", st.Store, st.Segment, st.Documents)
			}
			sum, _ := json.Marshal(rec.Matched)
			if len(sum) < 2000 {
				fmt.Fprintf(cmd.OutOrStdout(), "matched: %s\n", sum)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&urls, "urls", "", "file of URLs, one a line (exact match)")
	cmd.Flags().StringVar(&domains, "domains", "", "file of host names, one a line (the host and its subdomains)")
	cmd.Flags().StringVar(&ids, "ids", "", "file of document ids, one a line")
	cmd.Flags().BoolVar(&withDups, "with-duplicates", false, "also remove the members of the documents' dedup clusters")
	return cmd
}

// readLines reads a list file: one entry a line; blank lines and lines
// starting with "#" are skipped (a URL may hold "#").
func readLines(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out, nil
}
