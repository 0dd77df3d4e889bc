package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/smelt-dev/smelt/ingest"
	"github.com/smelt-dev/smelt/pipelines"
	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/trainer"
	"github.com/spf13/cobra"
)

// trafilaturaModule ships ~950 real web pages (its extraction comparison
// set) in test-files/comparison; every build of smelt downloads it, so the
// demo needs no data from anywhere else.
const trafilaturaModule = "github.com/markusmobius/go-trafilatura"

func newDemoCmd() *cobra.Command {
	var (
		out     string
		workers int
		pages   int
		abl     bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole pipeline on real web pages that ship in Go modules smelt is built from",
		Long: `demo runs the bundled demo recipe (smelt explain demo prints it) end to end
on real data with no arguments: the ~950 real web pages that ship inside
the go-trafilatura Go module (its extraction comparison set, fetched
through the Go module proxy like any dependency) are the crawl; three
public-domain English books shipped as test data in other modules smelt is
built from (Tom Sawyer in klauspost/compress, Sherlock Holmes in
pierrec/lz4, Newton's Opticks in andybalholm/brotli) are
the reference text, the quality classifier's positives. Then: filter
(language, Gopher, C4, FineWeb rules and GPT-3's Pareto keep policy),
dedup, a trained byte-level BPE, token shards, a short CPU training run,
a sample of generated text and the statistics of every step. It ends with
a small ablation: the same small model trained on the pages as ingested,
after the heuristics, and after the heuristics, the classifier and dedup,
two seeds each, scored on held-out pages and a book no arm saw
(--ablation=false leaves it out).

Output goes to --out (default ./demo-run), an ordinary smelt run
directory (smelt status, smelt stats DIR/STEP); a finished demo is reused,
an interrupted one resumes, and a changed demo recipe (another --pages)
redoes only what it changes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			start := time.Now()
			w := cmd.OutOrStdout()
			data, _ := pipelines.Bundled("demo")
			r, err := pipelines.ParseRecipe(data, ".")
			if err != nil {
				return fmt.Errorf("bundled demo recipe: %w", err)
			}
			dir, err := demoPagesDir()
			if err != nil {
				return err
			}
			files, err := ingest.ExpandInputs(cmd.Context(), []string{filepath.Join(dir, "*.html")})
			if err != nil {
				return err
			}
			if !abl {
				r.Ablate = nil
			}
			web := r.Sources[0]
			web.Inputs = []string{filepath.Join(dir, "*.html")}
			if pages > 0 && pages < len(files) {
				files = files[:pages]
				web.Inputs = files
			}
			fmt.Fprintf(w, "demo: %d real web pages from %s\n", len(files), dir)
			for _, s := range r.Sources[1:] {
				fmt.Fprintf(w, "demo: reference text %q: %s\n", s.Name, strings.Join(s.Inputs, ", "))
			}
			run, err := pipelines.Open(out, r, pipelines.OpenOptions{Force: true, Version: smeltVersion()})
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "demo: run directory %s (smelt status %s)\n\n", run.Dir, out)
			if err := runLocal(cmd, run, workers); err != nil {
				return fmt.Errorf("%w\n(run smelt demo again to resume)", err)
			}
			fmt.Fprintf(w, "\ndemo: pipeline done in %s\n", time.Since(start).Round(time.Millisecond))
			if err := printDemoReport(w, run); err != nil {
				return err
			}
			if err := printDemoAblation(w, run); err != nil {
				return err
			}
			fmt.Fprintf(w, "\n== next\nsmelt report %s -o report.html   one HTML page: what went in, what came out, why\nsmelt inspect %s                  browse every kept and dropped document on 127.0.0.1:8080\nsmelt explain demo                      the recipe this ran; write your own from it\n", out, out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "demo-run", "run directory")
	cmd.Flags().IntVarP(&workers, "workers", "j", 0, "parallel workers (0 = all cores)")
	cmd.Flags().IntVar(&pages, "pages", 0, "use only the first N pages (0 = all)")
	cmd.Flags().BoolVar(&abl, "ablation", true, "end with the ablation (--ablation=false: the pipeline and the training run only)")
	return cmd
}

// printDemoReport prints what every step of the demo run did.
func printDemoReport(w io.Writer, run *pipelines.Run) error {
	fmt.Fprintln(w, "\n== what each step did (smelt stats DIR for the full report)")
	for _, s := range run.Plan.Steps {
		st, err := shards.ReadStats(filepath.Join(run.Dir, s.Name))
		if err != nil || st.In.Docs == 0 { // train keeps only its loss
			continue
		}
		fmt.Fprintf(w, "%-14s ", s.Name)
		if err := printSummary(w, st); err != nil {
			return err
		}
	}
	if m, err := os.ReadFile(filepath.Join(run.Dir, "classifier", "metrics.json")); err == nil {
		var met struct {
			HeldOut struct {
				N        int     `json:"n"`
				Accuracy float64 `json:"accuracy"`
				AUC      float64 `json:"roc_auc"`
			} `json:"held_out"`
			Examples int `json:"examples"`
		}
		if json.Unmarshal(m, &met) == nil {
			fmt.Fprintf(w, "\nquality classifier: %d examples; held-out accuracy %.3f, ROC AUC %.3f (n=%d)\n",
				met.Examples, met.HeldOut.Accuracy, met.HeldOut.AUC, met.HeldOut.N)
		}
	}
	fdir := filepath.Join(run.Dir, "filter-web")
	if rep, err := loadStatsReport(fdir); err == nil {
		fmt.Fprintf(w, "\n== filter-web: why pages were dropped\n")
		rep.Manifest.Inputs = nil
		if err := printStats(w, rep); err != nil {
			return err
		}
	}
	if tm, err := shards.ReadManifest(filepath.Join(run.Dir, "tokenize")); err == nil && tm.Tokenizer != nil {
		fmt.Fprintf(w, "\n== token shards: %d tokens in %d shards, tokenizer %s (vocab %d)\n",
			tm.Totals.Tokens, len(tm.Shards), tm.Tokenizer.Name, tm.Tokenizer.VocabSize)
		for _, src := range sortedSources(tm.Sources) {
			fmt.Fprintf(w, "  %-8s %8d documents %10d tokens\n", src, tm.Sources[src].Rows, tm.Sources[src].Tokens)
		}
	}
	if tr := run.Recipe.Train; tr != nil {
		if m, err := shards.LoadMix(filepath.Join(run.Dir, pipelines.MixFileName)); err == nil {
			seq := tr.SeqLen
			if seq == 0 {
				if c, ok := trainer.Presets[tr.Config]; ok {
					seq = c.Context
				}
			}
			budget := int64(tr.Steps) * int64(tr.BatchSize) * int64(seq+1)
			fmt.Fprintf(w, "\n== the mix for %d training steps (%s tokens)\n", tr.Steps, shards.FormatTokens(budget))
			if _, err := shards.WritePlan(w, m.Plan(budget)); err != nil {
				return err
			}
		}
		tdir := filepath.Join(run.Dir, "train")
		if recs, err := trainer.ReadLog(filepath.Join(tdir, "log.csv")); err == nil && len(recs) > 0 {
			fmt.Fprintf(w, "\n== training: loss %.3f at step %d -> %.3f at step %d (curve: %s)\n",
				recs[0].Loss, recs[0].Step, recs[len(recs)-1].Loss, recs[len(recs)-1].Step, filepath.Join(tdir, "loss.png"))
			var vals []string
			for _, r := range recs {
				if !math.IsNaN(r.ValLoss) && (r.Step%500 == 0 || r.Step == recs[len(recs)-1].Step) {
					vals = append(vals, fmt.Sprintf("%.3f at step %d", r.ValLoss, r.Step))
				}
			}
			if len(vals) > 0 {
				fmt.Fprintf(w, "validation loss (held-out %g of the text): %s\n", *tr.ValFraction, strings.Join(vals, ", "))
			}
		}
		if sample, err := os.ReadFile(filepath.Join(tdir, pipelines.SampleFile)); err == nil {
			from := "from end-of-text"
			if tr.Prompt != "" {
				from = fmt.Sprintf("from the prompt %q", tr.Prompt)
			}
			fmt.Fprintf(w, "\n== generated text (%d tokens %s, temperature 0.8, top-k 40; smelt generate --checkpoint %s --prompt TEXT for more)\n%s\n",
				tr.SampleTokens, from, tdir, strings.TrimSpace(string(sample)))
		}
	}
	return nil
}

func sortedSources(m map[string]shards.Totals) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// demoPagesDir finds go-trafilatura's test pages in the Go module cache,
// downloading the module (through the Go module proxy) if it is not there.
func demoPagesDir() (string, error) {
	version := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == trafilaturaModule {
				version = d.Version
				if d.Replace != nil {
					version = d.Replace.Version
				}
			}
		}
	}
	if version == "" {
		return "", fmt.Errorf("this smelt binary was built without %s version information", trafilaturaModule)
	}
	var modDir string
	if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		if cache := strings.TrimSpace(string(out)); cache != "" {
			modDir = filepath.Join(cache, trafilaturaModule+"@"+version)
		}
	}
	pages := filepath.Join(modDir, "test-files", "comparison")
	if modDir != "" {
		if _, err := os.Stat(pages); err == nil {
			return pages, nil
		}
	}
	out, err := exec.Command("go", "mod", "download", "-json", trafilaturaModule+"@"+version).Output()
	if err != nil {
		return "", fmt.Errorf("fetch the demo pages (go mod download %s@%s): %w; the demo needs the Go toolchain and the Go module proxy", trafilaturaModule, version, err)
	}
	var info struct{ Dir string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s: unexpected answer %q", trafilaturaModule, out)
	}
	return filepath.Join(info.Dir, "test-files", "comparison"), nil
}
