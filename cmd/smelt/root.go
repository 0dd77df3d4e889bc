package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"

	"github.com/smelt-dev/smelt/shards"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=..."; when it
// is empty the module version recorded by the Go toolchain is used.
var version = ""

func smeltVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func newRootCmd() *cobra.Command {
	var verbose bool
	root := &cobra.Command{
		Use:   "smelt",
		Short: "Turn raw web crawls into training-ready token shards and train a model on them",
		Long: `smelt is one binary from crawl to trained model:

  ingest -> filter -> dedup -> tokenize -> shards -> train

Each stage reads and writes Arrow IPC shards with a manifest.json, is
deterministic whatever the worker count, and resumes after being killed.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
			return checkShardMB(cmd)
		},
	}
	root.PersistentFlags().BoolVarP(&verbose, "verbose", "v", false, "log debug detail")
	root.AddCommand(
		newVersionCmd(),
		newIngestCmd(),
		newStatsCmd(),
		newDemoCmd(),
		newDedupCmd(),
		newFilterCmd(),
		newClassifierCmd(),
		newFastTextCmd(),
		newTokenizeCmd(),
		newTokenizerCmd(),
		newMixCmd(),
		newRunCmd(), newStatusCmd(), newExplainCmd(),
		newTrainCmd(), newEvalCmd(),
		newGenerateCmd(),
		newReportCmd(),
		newInspectCmd(),
		newDecontamCmd(),
		newExportCmd(),
		newSplitCmd(), newMixSearchCmd(),
		newLineageCmd(), newTakedownCmd(), // issue 28
		// Stage verbs: one constructor per verb, each in its own file.
	)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print smelt's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "smelt", smeltVersion())
			return err
		},
	}
}

// checkShardMB validates the --shard-mb flag of whichever verb has one, in
// one place for all of them, before the verb does any work: a size that is
// not positive or that would overflow when shifted to bytes is an error,
// never a silent fall back to the default.
func checkShardMB(cmd *cobra.Command) error {
	f := cmd.Flags().Lookup("shard-mb")
	if f == nil {
		return nil
	}
	mb, err := strconv.ParseFloat(f.Value.String(), 64)
	if err == nil {
		_, err = shards.ShardBytes(mb)
	}
	if err != nil {
		return fmt.Errorf("--shard-mb %s: %w", strconv.FormatFloat(mb, 'f', -1, 64), err)
	}
	return nil
}
