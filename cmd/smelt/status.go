package main

import (
	"os"

	"github.com/smelt-dev/smelt/pipelines"
	"github.com/spf13/cobra"
)

func newStatusCmd() *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "status RUN_DIR",
		Short: "Show every step's tasks of a smelt run: done, running, failed (with the error), pending",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := os.Stat(args[0]); err != nil {
				return err
			}
			run, err := pipelines.OpenExisting(args[0], nil)
			if err != nil {
				return err
			}
			return run.WriteStatus(cmd.OutOrStdout(), verbose)
		},
	}
	cmd.Flags().BoolVar(&verbose, "all", false, "list done tasks too")
	return cmd
}
