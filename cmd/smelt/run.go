package main

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/smelt-dev/smelt/lineage"
	"github.com/smelt-dev/smelt/pipelines"
	"github.com/spf13/cobra"
)

func newRunCmd() *cobra.Command {
	var (
		executor, runDir, step  string
		workers, rank, parallel int
		force, finalize, noWait bool
		sbatchArgs              []string
	)
	cmd := &cobra.Command{
		Use:   "run RECIPE.yaml [--executor local|slurm] [--workers N] [--run-dir DIR]",
		Short: "Run a whole pipeline from a YAML recipe: ingest, filter, dedup, tokenizer, token shards, train",
		Long: `run executes a recipe (a YAML file, or a bundled one: ` + strings.Join(pipelines.BundledNames(), ", ") + `)
in a run directory (--run-dir, default runs/NAME): recipe.yaml (resolved)
and run.json (smelt version) are recorded, and each step gets an ordinary
stage directory (manifest.json, stats.json, dropped/) that smelt stats
reads: ingest-SOURCE, filter-SOURCE, classifier, dedup, tokenizer,
tokenize (one token-shard directory per source, tokenize/tasks/SOURCE, and
mix.yaml) and train.

Every step is cut into tasks (ingest and filter over groups of input
files, tokenize per source, dedup per source or, with scope: global in the
recipe's dedup section, one task over all sources); a task writes its
outputs atomically, then a completion marker under .smelt/tasks. Running
the same command again skips finished tasks and resumes the others, ending
with the same bytes as an uninterrupted run. A changed recipe is refused
unless --force, which redoes only the tasks it changes.

--executor local (default) runs the tasks in this process with --workers
in parallel. --executor slurm submits a job array per step (sbatch
--array, only unfinished ranks, at most --parallel at once) chained with
afterok dependencies, each task running smelt run with its rank, and waits
for them unless --no-wait; logs go to .smelt/logs. smelt status RUN_DIR
shows every task.`,
		Example: `  smelt run pipelines/fineweb.yaml --run-dir runs/fw
  smelt run demo
  smelt run recipe.yaml --executor slurm --parallel 16 --sbatch-arg=--partition=cpu
  smelt status runs/fw`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if step != "" || finalize {
				// One task (or the merge) of a run that smelt run prepared:
				// only the run directory's own recipe and plan are read.
				if runDir == "" {
					return errors.New("--step and --finalize need --run-dir")
				}
				run, err := pipelines.OpenExisting(runDir, nil)
				if err != nil {
					return err
				}
				if err := checkSameRecipe(args[0], run); err != nil {
					return err
				}
				if finalize {
					return run.Finalize()
				}
				if rank < 0 {
					return errors.New("--step needs --rank")
				}
				return run.RunTask(ctx, step, rank, pipelines.TaskOptions{Workers: workers})
			}
			r, err := pipelines.LoadRecipe(args[0])
			if err != nil {
				return err
			}
			if w := lineage.TakedownListWarning(r); w != "" {
				slog.Warn(w) // issue 28: a takedown list the recipe does not read
			}
			if runDir == "" {
				runDir = filepath.Join("runs", r.Name)
			}
			runOut, err := remoteRunDir(ctx, runDir, executor)
			if err != nil {
				return err
			}
			runDir = runOut.Dir
			run, err := pipelines.Open(runDir, r, pipelines.OpenOptions{Force: force, Version: smeltVersion()})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "smelt run: recipe %s, run directory %s, %d steps\n", r.Name, run.Dir, len(run.Plan.Steps))
			start := time.Now()
			switch executor {
			case "local":
				err = runLocal(cmd, run, workers)
			case "slurm":
				var sub *pipelines.Submission
				last := -1
				var lastLog time.Time
				sub, err = run.SubmitSlurm(ctx, pipelines.SlurmOptions{Parallel: parallel, TaskWorkers: max(workers, 1),
					Sbatch: sbatchArgs, Wait: !noWait,
					OnSubmit: func(step, job string) {
						if step == "" {
							fmt.Fprintf(w, "slurm: merge job %s (log %s)\n", job, filepath.Join(run.Dir, pipelines.StateDir, "logs", "finalize.log"))
							return
						}
						fmt.Fprintf(w, "slurm: step %s: job array %s (logs %s)\n", step, job, filepath.Dir(run.LogPath(step, 0)))
					},
					OnPoll: func(done, total int) {
						if done != last || time.Since(lastLog) > time.Minute {
							last, lastLog = done, time.Now()
							fmt.Fprintf(w, "slurm: %d of %d tasks done\n", done, total)
						}
					}})
				if sub != nil && len(sub.Jobs) == 0 && sub.Finalize == "" {
					fmt.Fprintln(w, "slurm: every task is done; nothing to submit")
				}
				if err == nil && noWait {
					fmt.Fprintf(w, "submitted; follow with: smelt status %s\n", run.Dir)
					return nil
				}
			default:
				return fmt.Errorf("--executor %q: want local or slurm", executor)
			}
			if err != nil {
				return fmt.Errorf("%w\n(smelt status %s shows every task; run the same command again to resume)", err, run.Dir)
			}
			if err := runOut.Publish(ctx); err != nil {
				return err
			}
			fmt.Fprintf(w, "smelt run: done in %s\n", time.Since(start).Round(time.Millisecond))
			return run.WriteStatus(w, false)
		},
	}
	f := cmd.Flags()
	f.StringVar(&executor, "executor", "local", "where tasks run: local (worker pool here) or slurm (job arrays)")
	f.IntVarP(&workers, "workers", "j", 0, "local: parallel workers (0 = all cores); slurm: cores per task (default 1); output is the same for any value")
	f.StringVar(&runDir, "run-dir", "", "run directory, or an s3:// URL with the local executor (default runs/NAME)")
	f.BoolVar(&force, "force", false, "run a changed recipe in an existing run directory, redoing the tasks it changes")
	f.IntVar(&parallel, "parallel", 0, "slurm: array tasks of a step running at once (0 = no limit)")
	f.BoolVar(&noWait, "no-wait", false, "slurm: submit and return without waiting")
	f.StringArrayVar(&sbatchArgs, "sbatch-arg", nil, "slurm: extra sbatch argument (repeatable), e.g. --sbatch-arg=--partition=cpu")
	f.StringVar(&step, "step", "", "run one task of this step (used by the Slurm executor)")
	f.IntVar(&rank, "rank", -1, "the task's rank within --step")
	f.BoolVar(&finalize, "finalize", false, "merge the finished steps' outputs (used by the Slurm executor)")
	for _, h := range []string{"step", "rank", "finalize"} {
		_ = f.MarkHidden(h)
	}
	return cmd
}

// checkSameRecipe refuses a task whose recipe is not the run directory's.
func checkSameRecipe(path string, run *pipelines.Run) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if abs == filepath.Join(run.Dir, pipelines.RecipeFile) {
		return nil
	}
	r, err := pipelines.LoadRecipe(path)
	if err != nil {
		return err
	}
	a, err := r.Hash()
	if err != nil {
		return err
	}
	if a != run.Plan.RecipeHash {
		return fmt.Errorf("%s is not the recipe %s was started with: run smelt run %s without --step first", path, run.Dir, path)
	}
	return nil
}

// runLocal runs the local executor with a progress display per step.
func runLocal(cmd *cobra.Command, run *pipelines.Run, workers int) error {
	var (
		mu sync.Mutex
		p  *progress
	)
	w := cmd.OutOrStdout()
	err := run.RunLocal(cmd.Context(), pipelines.LocalOptions{
		Workers: workers,
		OnStep: func(s *pipelines.Step, pending int, done bool, took time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			if !done {
				if pending == 0 {
					fmt.Fprintf(w, "step %-16s %d tasks, all done before\n", s.Name, len(s.Tasks))
					return
				}
				fmt.Fprintf(w, "step %-16s %d tasks to run (of %d)\n", s.Name, pending, len(s.Tasks))
				unit := "bytes"
				if s.Kind == pipelines.KindTrain {
					unit = "steps"
				}
				p = newProgressOf(cmd.ErrOrStderr(), s.Name, 0, unit)
				return
			}
			if p != nil {
				p.finish(nil)
				p = nil
			}
			if pending > 0 {
				fmt.Fprintf(w, "step %-16s done in %s\n", s.Name, took.Round(time.Millisecond))
			}
		},
		Progress: func(s *pipelines.Step, done, total int64) {
			mu.Lock()
			defer mu.Unlock()
			if p == nil {
				return
			}
			if total > 0 && p.total != total {
				p.total = total
				if p.bar != nil {
					p.bar.ChangeMax64(total)
				}
			}
			p.update(done, 0, 0)
		},
	})
	mu.Lock()
	defer mu.Unlock()
	if p != nil {
		p.finish(err) // a failed step leaves its bar unfinished
	}
	return err
}
