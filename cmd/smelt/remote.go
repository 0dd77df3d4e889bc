package main

import (
	"context"
	"fmt"

	"github.com/smelt-dev/smelt/store"
)

// The CLI side of package store: stage outputs and run directories may be
// s3:// URLs (written to a local staging directory, then published, data
// first and manifests last), and directories to read may be URLs (fetched
// to a local cache first).

// remoteOutput resolves --out or --run-dir: for a URL, the local staging
// directory to write, and the Output to Publish when the job succeeded.
func remoteOutput(ctx context.Context, out string) (*store.Output, error) {
	o, err := store.PrepareOutput(ctx, out)
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", store.Redact(out), err)
	}
	return o, nil
}

// localDirs fetches the directories among dirs that are URLs (want selects
// which files; nil fetches all) and returns local paths in the same order.
func localDirs(ctx context.Context, dirs []string, want func(string) bool) ([]string, error) {
	out := make([]string, len(dirs))
	for i, d := range dirs {
		l, err := store.Fetch(ctx, d, want)
		if err != nil {
			return nil, err
		}
		out[i] = l
	}
	return out, nil
}

// remoteRunDir resolves --run-dir. An s3:// run directory is staged
// locally and published when the run is done; the Slurm executor's tasks
// run on other machines, which would not see the staging directory, so it
// needs a shared directory (its tasks still read s3:// inputs directly).
func remoteRunDir(ctx context.Context, runDir, executor string) (*store.Output, error) {
	if store.IsRemote(runDir) && executor != "local" {
		return nil, fmt.Errorf("--run-dir %s: a run directory in an object store works with --executor local; with slurm use a directory every node shares (inputs may still be s3:// or https:// URLs, which tasks read directly)", store.Redact(runDir))
	}
	return remoteOutput(ctx, runDir)
}

// remoteIO is the hook of the stage verbs that read shard directories and
// write one (filter, dedup, tokenize): s3:// inputs are fetched, an s3://
// --out is staged; Publish the returned Output when the stage succeeded.
func remoteIO(ctx context.Context, inputs []string, out string) ([]string, *store.Output, error) {
	dirs, err := localDirs(ctx, inputs, nil)
	if err != nil {
		return nil, nil, err
	}
	o, err := remoteOutput(ctx, out)
	if err != nil {
		return nil, nil, err
	}
	return dirs, o, nil
}
