package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/smelt-dev/smelt/ingest"
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
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run smelt on real web pages that ship in the go-trafilatura module",
		Long: `demo runs the pipeline on real data with no arguments: the ~950 real web
pages that ship inside the go-trafilatura Go module (its extraction
comparison set, fetched through the Go module proxy like any dependency)
are ingested as a crawl of HTML pages into document shards, and the
statistics are printed. Output goes to --out (default ./demo-run); a
finished demo is reused, an interrupted one resumes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := demoPagesDir()
			if err != nil {
				return err
			}
			files, err := ingest.ExpandInputs([]string{filepath.Join(dir, "*.html")})
			if err != nil {
				return err
			}
			if pages > 0 && pages < len(files) {
				files = files[:pages]
			}
			fmt.Fprintf(cmd.OutOrStdout(), "demo: %d real web pages from %s\n", len(files), dir)
			docs := filepath.Join(out, "docs")
			var total int64
			for _, f := range files {
				if info, err := os.Stat(f); err == nil {
					total += info.Size()
				}
			}
			start := time.Now()
			p := newProgress(cmd.ErrOrStderr(), "ingest", total)
			st, err := ingest.Run(cmd.Context(), files, docs, ingest.Options{
				Source:   "trafilatura-pages",
				Format:   ingest.FormatHTML,
				Workers:  workers,
				Progress: func(pr ingest.Progress) { p.update(pr.Bytes, pr.Records, pr.Documents) },
			})
			p.finish()
			if err != nil {
				return err
			}
			if err := printSummary(cmd.OutOrStdout(), st); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "demo: ingest took %s; document shards in %s\n\n", time.Since(start).Round(time.Millisecond), docs)
			r, err := loadStatsReport(docs)
			if err != nil {
				return err
			}
			r.Manifest.Inputs = nil // 950 lines of provenance is too much for a demo; see smelt stats
			return printStats(cmd.OutOrStdout(), r)
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "demo-run", "run directory")
	cmd.Flags().IntVarP(&workers, "workers", "j", 0, "parallel workers (0 = all cores)")
	cmd.Flags().IntVar(&pages, "pages", 0, "use only the first N pages (0 = all)")
	return cmd
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
