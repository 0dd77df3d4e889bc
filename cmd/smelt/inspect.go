package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/smelt-dev/smelt/report"
	"github.com/spf13/cobra"
)

func newInspectCmd() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "inspect RUN_DIR|DIR [--addr 127.0.0.1:8080]",
		Short: "Browse every kept and dropped document of a run in a local, read-only web page",
		Long: `inspect serves a local web page to browse the documents of a run directory
or a stage directory: by step, verdict (kept or dropped) and drop reason,
with search by document id or url. A document's page shows its text, its
scores and, for a dropped one, the rule and value that dropped it; a
duplicate is shown side by side with the document it duplicates.

It binds the loopback address by default, only answers GET, pages through
the shards without loading them, and escapes all document text: crawled
HTML is shown as text, never run (pages forbid scripts with a
Content-Security-Policy). /report serves the same report as smelt report.`,
		Example: `  smelt inspect runs/demo
  smelt inspect runs/demo --addr 127.0.0.1:9000`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dirs, err := localDirs(cmd.Context(), args, nil) // an s3:// directory is fetched first
			if err != nil {
				return err
			}
			run, err := report.Load(dirs[0], report.Options{})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", addr, err)
			}
			ctx := cmd.Context()
			srv := &http.Server{Handler: report.NewServer(ctx, run), ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(cmd.OutOrStdout(), "smelt inspect: serving %s on http://%s/ (Ctrl-C to stop)\n", args[0], ln.Addr())
			if host, _, err := net.SplitHostPort(ln.Addr().String()); err == nil {
				if ip := net.ParseIP(host); ip != nil && !ip.IsLoopback() {
					slog.Warn("inspect is reachable from other machines: it has no authentication", "addr", ln.Addr().String())
				}
			}
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := srv.Shutdown(sctx); err != nil {
					return err
				}
				if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
					return err
				}
				return nil
			}
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on (loopback by default; port 0 picks a free one)")
	return cmd
}
