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
	var (
		addr       string
		allowHosts []string
	)
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
Content-Security-Policy). /report serves the same report as smelt report.

It answers only requests whose Host header is a loopback name (localhost,
127.0.0.1, [::1]), the address it listens on (every address of this
machine when that is 0.0.0.0 or [::]) or a name given with --allow-host;
others get 421 Misdirected Request, so a web site whose name is made to
resolve to 127.0.0.1 (DNS rebinding) cannot read the documents through
your browser.`,
		Example: `  smelt inspect runs/demo
  smelt inspect runs/demo --addr 127.0.0.1:9000
  smelt inspect runs/demo --addr 0.0.0.0:8080 --allow-host gpu01.lan`,
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
			h := report.NewServer(ctx, run)
			for _, a := range listenHosts(ln.Addr()) {
				h.AllowHost(a)
			}
			for _, a := range allowHosts {
				h.AllowHost(a)
			}
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
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
	cmd.Flags().StringSliceVar(&allowHosts, "allow-host", nil, "a host name browsers may use to reach inspect, besides localhost and the listen address (repeatable)")
	return cmd
}

// listenHosts are the addresses a listener answers on: its own IP, or every
// address of the machine's interfaces when it listens on all of them.
func listenHosts(a net.Addr) []string {
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsUnspecified() {
		return []string{host}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		slog.Warn("inspect: cannot list this machine's addresses; only loopback and --allow-host names are served", "err", err)
		return nil
	}
	var out []string
	for _, ia := range addrs {
		if n, ok := ia.(*net.IPNet); ok {
			out = append(out, n.IP.String())
		}
	}
	return out
}
