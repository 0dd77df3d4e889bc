package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/smelt-dev/smelt/dedup"
	"github.com/smelt-dev/smelt/pipelines"
	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/store"
	"github.com/spf13/cobra"
)

// statsReport is the stable JSON shape of `smelt stats --json`: the
// directory, its manifest, its stats (absent for directories written
// without them) and the manifest of its dropped side output, if any.
type statsReport struct {
	Dir      string           `json:"dir"`
	Manifest *shards.Manifest `json:"manifest"`
	Stats    *shards.Stats    `json:"stats,omitempty"`
	Dropped  *shards.Manifest `json:"dropped,omitempty"`
	// DedupClusters are the largest duplicate clusters of a dedup
	// directory: its own dedup_clusters.json, or those of the tasks a
	// pipeline step was merged from, in task order.
	DedupClusters []*dedup.ClusterReport `json:"dedup_clusters,omitempty"`
}

// loadClusters reads dir's dedup cluster reports, if it has any.
func loadClusters(dir string) ([]*dedup.ClusterReport, error) {
	paths := []string{filepath.Join(dir, dedup.ClustersName)}
	if _, err := os.Stat(paths[0]); err != nil {
		paths, _ = filepath.Glob(filepath.Join(dir, "tasks", "*", dedup.ClustersName))
		sort.Strings(paths)
	}
	var out []*dedup.ClusterReport
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var r dedup.ClusterReport
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, &r)
	}
	return out, nil
}

func loadStatsReport(dir string) (*statsReport, error) {
	m, err := shards.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	r := &statsReport{Dir: dir, Manifest: m}
	if st, err := shards.ReadStats(dir); err == nil {
		r.Stats = st
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if dm, err := shards.ReadManifest(filepath.Join(dir, shards.DroppedDir)); err == nil {
		r.Dropped = dm
	}
	if r.DedupClusters, err = loadClusters(dir); err != nil {
		return nil, err
	}
	return r, nil
}

func newStatsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stats DIR",
		Short: "Show what a stage did: documents and bytes in and out, languages, drops and errors by reason, inputs",
		Long: `stats reads DIR's manifest.json and stats.json and prints documents and
bytes in and out, per-language counts, skip/drop and error counts by reason,
per-input provenance and stage-specific metrics. For token-shard
directories it shows tokens per source and the shard list. For a run
directory (smelt run, smelt demo) it prints one line per step; give
RUN_DIR/STEP for a step's full report.

--json prints {"dir", "manifest", "stats", "dropped", "dedup_clusters"}:
the manifest and stats objects exactly as stored, and for a dedup
directory its largest duplicate clusters (see the README); for a run
directory {"dir", "steps": [that object for each finished step]}.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// An s3:// directory: its JSON files (and a run directory's
			// recipe and task markers) are fetched to a local cache.
			dirs, err := localDirs(cmd.Context(), args, statsFile)
			if err != nil {
				return err
			}
			if isRunDir(dirs[0]) {
				return runDirStats(cmd.OutOrStdout(), dirs[0], store.Redact(args[0]), asJSON)
			}
			r, err := loadStatsReport(dirs[0])
			if err != nil {
				if store.IsRemote(args[0]) { // err names the local copy
					return fmt.Errorf("%s: %w", store.Redact(args[0]), err)
				}
				return err
			}
			r.Dir = store.Redact(args[0]) // printed: no credential of a URL
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			return printStats(cmd.OutOrStdout(), r)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print machine-readable JSON")
	return cmd
}

// isRunDir reports whether dir is a run directory (smelt run's recipe and
// plan) rather than one stage's output.
func isRunDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, pipelines.RecipeFile))
	_, perr := os.Stat(filepath.Join(dir, pipelines.StateDir, pipelines.PlanFile))
	_, merr := os.Stat(filepath.Join(dir, shards.ManifestName))
	return err == nil && perr == nil && errors.Is(merr, fs.ErrNotExist)
}

// statsFile selects the files of a remote directory that stats reads: the
// JSON files (manifests, stats, a run's plan), and a run directory's
// recipe and task markers.
func statsFile(rel string) bool {
	return store.OnlyJSON(rel) || rel == pipelines.RecipeFile || strings.HasSuffix(rel, ".done")
}

// runDirStats prints what each step of a run directory did; name is the
// directory as the user gave it (dir may be a local copy of a URL).
func runDirStats(w io.Writer, dir, name string, asJSON bool) error {
	run, err := pipelines.OpenExisting(dir, nil)
	if err != nil {
		return err
	}
	if asJSON {
		out := struct {
			Dir   string         `json:"dir"`
			Steps []*statsReport `json:"steps"`
		}{Dir: name, Steps: []*statsReport{}}
		for _, s := range run.Plan.Steps {
			if r, err := loadStatsReport(filepath.Join(dir, s.Name)); err == nil {
				r.Dir = store.Join(name, s.Name)
				out.Steps = append(out.Steps, r)
			}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintf(w, "%s: run %q, %d steps (smelt stats %s for a step's full report, smelt status for its tasks)\n\n",
		name, run.Recipe.Name, len(run.Plan.Steps), store.Join(name, "STEP"))
	return printStepSummaries(w, run)
}

// printStepSummaries prints one summary line per step of a run that
// counts documents (train keeps only its loss), and for the others
// whether they are done.
func printStepSummaries(w io.Writer, run *pipelines.Run) error {
	for _, s := range run.Plan.Steps {
		st, err := shards.ReadStats(filepath.Join(run.Dir, s.Name))
		if errors.Is(err, fs.ErrNotExist) || err == nil && st.In.Docs == 0 {
			if n := len(run.Pending(s)); n > 0 {
				fmt.Fprintf(w, "%-14s %d of %d tasks not done yet\n", s.Name, n, len(s.Tasks))
			} else {
				fmt.Fprintf(w, "%-14s done (%s counts no documents)\n", s.Name, s.Kind)
			}
			continue
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%-14s ", s.Name)
		if err := printSummary(w, st); err != nil {
			return err
		}
	}
	return nil
}

func printStats(out io.Writer, r *statsReport) error {
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	m := r.Manifest
	fmt.Fprintf(w, "%s\t%s shards written by %s (format v%d)\n", r.Dir, m.Kind, m.Stage, m.FormatVersion)
	fmt.Fprintf(w, "shards\t%d files, %s on disk, %s of data, %d rows", len(m.Shards), humanBytes(m.Totals.Bytes), humanBytes(m.Totals.DataBytes), m.Totals.Rows)
	if m.Totals.Tokens > 0 {
		fmt.Fprintf(w, ", %d tokens", m.Totals.Tokens)
	}
	fmt.Fprintln(w)
	if m.Tokenizer != nil {
		fmt.Fprintf(w, "tokenizer\t%s (vocab %d, eot %d, ranks %.12s)\n", m.Tokenizer.Name, m.Tokenizer.VocabSize, m.Tokenizer.EOT, m.Tokenizer.RanksHash)
	}
	if len(m.Sources) > 0 {
		fmt.Fprintln(w, "\nsource\trows\tdata\ttokens")
		for _, k := range shards.SortedKeys(m.Sources) {
			s := m.Sources[k]
			tokens := "-"
			if s.Tokens > 0 {
				tokens = fmt.Sprint(s.Tokens)
			}
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", k, s.Rows, humanBytes(s.DataBytes), tokens)
		}
	}
	if st := r.Stats; st != nil {
		fmt.Fprintf(w, "\nin\t%d\t%s\n", st.In.Docs, humanBytes(st.In.Bytes))
		fmt.Fprintf(w, "kept\t%d\t%s\t%s\n", st.Out.Docs, humanBytes(st.Out.Bytes), pct(st.Out.Docs, st.In.Docs))
		d, e := shards.SumCounts(st.Dropped), shards.SumCounts(st.Errors)
		fmt.Fprintf(w, "dropped\t%d\t%s\t%s\n", d.Docs, humanBytes(d.Bytes), pct(d.Docs, st.In.Docs))
		fmt.Fprintf(w, "errors\t%d\t%s\t%s\n", e.Docs, humanBytes(e.Bytes), pct(e.Docs, st.In.Docs))
		if err := st.Balanced(); err != nil {
			fmt.Fprintf(w, "WARNING\t%v\n", err)
		}
		printCounts(w, "drop/skip reason", st.Dropped)
		printCounts(w, "error kind", st.Errors)
		printCounts(w, "text modified by", st.Modified)
		if len(st.Langs) > 0 {
			fmt.Fprintln(w, "\nlanguage\tdocs\tshare")
			keys := shards.SortedKeys(st.Langs)
			sort.SliceStable(keys, func(i, j int) bool { return st.Langs[keys[i]] > st.Langs[keys[j]] })
			for _, k := range keys {
				fmt.Fprintf(w, "%s\t%d\t%s\n", orNone(k), st.Langs[k], pct(st.Langs[k], st.Out.Docs))
			}
		}
		if len(st.Metrics) > 0 {
			fmt.Fprintln(w, "\nmetric\tn\tmean\tstd\tmin\tmax")
			for _, k := range shards.SortedKeys(st.Metrics) {
				x := st.Metrics[k]
				fmt.Fprintf(w, "%s\t%d\t%.4g\t%.4g\t%.4g\t%.4g %s\n", k, x.N, x.Mean, x.Std(), x.Min, x.Max, x.Unit)
			}
		}
		for _, k := range shards.SortedKeys(st.Histograms) {
			h := st.Histograms[k]
			fmt.Fprintf(w, "\nhistogram %s\t[%g, %g)\n", k, h.Lo, h.Hi)
			width := (h.Hi - h.Lo) / float64(len(h.Counts))
			for i, c := range h.Counts {
				fmt.Fprintf(w, "  %.3g\t%d\n", h.Lo+float64(i)*width, c)
			}
		}
		if len(st.ErrorSamples) > 0 {
			fmt.Fprintln(w, "\nfirst errors")
			for _, s := range st.ErrorSamples {
				fmt.Fprintf(w, "  %s\n", s)
			}
		}
	}
	if len(m.Inputs) > 0 {
		fmt.Fprintln(w, "\ninput\tformat\tbytes\trecords\tdocuments\tskipped\terrors")
		for _, in := range m.Inputs {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%d\n", in.Path, in.Format, humanBytes(in.Bytes), in.Records, in.Documents, in.Skipped, in.Errors)
		}
	}
	printClusters(w, r.DedupClusters)
	if r.Dropped != nil {
		fmt.Fprintf(w, "\ndropped side output\t%s: %d rows in %d shards\n", filepath.Join(r.Dir, shards.DroppedDir), r.Dropped.Totals.Rows, len(r.Dropped.Shards))
	}
	if m.Kind == shards.KindTokens {
		fmt.Fprintln(w, "\nshard\trows\ttokens\tbytes\tsha256")
		for _, s := range m.Shards {
			fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%.16s\n", s.Name, s.Rows, s.Tokens, humanBytes(s.Bytes), s.SHA256)
		}
	}
	return w.Flush()
}

// printCounts prints the non-zero counts of m (--json shows the declared
// zeros too).
// printClusters shows the five largest duplicate clusters of each report,
// with the first line of each member.
func printClusters(w io.Writer, reports []*dedup.ClusterReport) {
	for _, rep := range reports {
		for i, c := range rep.Clusters {
			if i == 5 {
				fmt.Fprintf(w, "  ... %d more in %s (smelt stats --json)\n", len(rep.Clusters)-5, dedup.ClustersName)
				break
			}
			fmt.Fprintf(w, "\nduplicate cluster\t%d documents, survivor %s\n", c.Size, c.Survivor)
			for _, m := range c.Members {
				line := m.FirstLine
				if len(line) > 70 {
					line = line[:70] + "..."
				}
				fmt.Fprintf(w, "  %s\t%s\t%s\n", m.ID, orNone(m.Reason), line)
			}
		}
	}
}

func printCounts(w io.Writer, title string, m map[string]shards.Count) {
	zero := 0
	for _, v := range m {
		if v.Docs == 0 {
			zero++
		}
	}
	if len(m) == zero {
		return
	}
	fmt.Fprintf(w, "\n%s\tdocs\tbytes\n", title)
	for _, k := range shards.SortedKeys(m) {
		if m[k].Docs > 0 {
			fmt.Fprintf(w, "%s\t%d\t%s\n", k, m[k].Docs, humanBytes(m[k].Bytes))
		}
	}
	if zero > 0 {
		fmt.Fprintf(w, "(%d more with no documents)\n", zero)
	}
}

func pct(a, b int64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(b))
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
