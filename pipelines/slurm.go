package pipelines

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SlurmOptions configure the Slurm executor.
type SlurmOptions struct {
	// Command is the command line that runs smelt, before its arguments
	// (default: this executable). Tests put their own binary here.
	Command []string
	// Parallel caps the array tasks of a step running at once (the %W of
	// --array); 0 means no cap.
	Parallel int
	// TaskWorkers is each task's parallelism and --cpus-per-task (default 1).
	TaskWorkers int
	// Sbatch holds extra sbatch arguments (partition, account, time).
	Sbatch []string
	// Wait polls the queue until the jobs end, then checks the markers.
	Wait bool
	// Poll is the queue polling interval (default 2s).
	Poll time.Duration
	// OnSubmit, if set, is called for every job submitted, with its step
	// ("" for the merge job) and job id.
	OnSubmit func(step, job string)
	// OnPoll, if set, is called at every poll while waiting with the number
	// of tasks done and in all.
	OnPoll func(done, total int)
}

// Submission is what SubmitSlurm submitted: a job id per step, and the
// final merge job.
type Submission struct {
	Jobs     map[string]string
	Order    []string
	Finalize string
}

// SubmitSlurm submits one job array per step with unfinished tasks (only
// those ranks), each depending on the arrays of the steps it needs with
// afterok and --kill-on-invalid-dep=yes, and a last job that merges the
// steps' outputs. Each array task runs `smelt run RUN_DIR/recipe.yaml
// --run-dir RUN_DIR --step STEP --rank $SLURM_ARRAY_TASK_ID`: it reads the
// recorded recipe and plan, nothing from the environment but its rank, and
// logs to RUN_DIR/.smelt/logs/STEP/RANK.log. With opt.Wait it waits for the
// jobs and returns an error naming the tasks that did not finish.
func (r *Run) SubmitSlurm(ctx context.Context, opt SlurmOptions) (*Submission, error) {
	if len(opt.Command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("slurm: locate the smelt binary: %w", err)
		}
		opt.Command = []string{exe}
	}
	if opt.TaskWorkers <= 0 {
		opt.TaskWorkers = 1
	}
	if opt.Poll <= 0 {
		opt.Poll = 2 * time.Second
	}
	if _, err := exec.LookPath("sbatch"); err != nil {
		return nil, errors.New("slurm: sbatch not found: install the Slurm client, or use --executor local")
	}
	unlock, err := r.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	sub := &Submission{Jobs: map[string]string{}}
	scripts := filepath.Join(r.Dir, StateDir, "slurm")
	if err := os.MkdirAll(scripts, 0o755); err != nil {
		return nil, err
	}
	// Two submissions must never run the same task at once: refuse while
	// jobs of an earlier one are still queued or running.
	jobsFile := filepath.Join(scripts, "jobs.json")
	var prev []string
	if data, err := os.ReadFile(jobsFile); err == nil {
		_ = json.Unmarshal(data, &prev)
	}
	if live := liveJobs(ctx, prev); len(live) > 0 {
		return nil, fmt.Errorf("slurm: jobs %s of an earlier submission for %s are still queued or running: wait for them (smelt status %s) or scancel them first",
			strings.Join(live, ","), r.Dir, r.Dir)
	}
	record := func(id string) error {
		prev = append(prev, id)
		return writeJSON(jobsFile, prev)
	}
	base := append(append([]string(nil), opt.Command...), "run", filepath.Join(r.Dir, RecipeFile), "--run-dir", r.Dir)
	var all []string
	for _, s := range r.Plan.Steps {
		pending := r.Pending(s)
		if len(pending) == 0 {
			continue
		}
		for _, rank := range pending {
			_ = removeIfExists(r.markerPath(s.Name, rank, failedExt))
		}
		if err := os.MkdirAll(filepath.Dir(r.LogPath(s.Name, 0)), 0o755); err != nil {
			return nil, err
		}
		// A step's own cpus and mem (the dedup steps') override the
		// executor's defaults; mem also sets the task's GOMEMLIMIT, 3/4 of
		// it, so that the Go heap stays well inside what Slurm enforces.
		cpus := opt.TaskWorkers
		if s.CPUs > 0 {
			cpus = s.CPUs
		}
		args := append(append([]string(nil), base...), "--step", s.Name, "--workers", strconv.Itoa(cpus), "--rank")
		env := ""
		if s.MemBytes > 0 {
			env = "export GOMEMLIMIT=" + strconv.FormatInt(s.MemBytes*3/4>>20, 10) + "MiB\n"
		}
		script := "#!/bin/sh\n# smelt task of step " + s.Name + "; the rank is the array index.\n" + env + "exec " + shellJoin(args) + " \"$SLURM_ARRAY_TASK_ID\"\n"
		path := filepath.Join(scripts, s.Name+".sh")
		if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
			return nil, err
		}
		array := joinInts(pending)
		if opt.Parallel > 0 {
			array += "%" + strconv.Itoa(opt.Parallel)
		}
		sb := []string{"--parsable", "--array=" + array, "--job-name=smelt-" + r.Recipe.Name + "-" + s.Name,
			"--output=" + filepath.Join(r.Dir, StateDir, "logs", s.Name, "%a.log"),
			"--cpus-per-task=" + strconv.Itoa(cpus), "--chdir=" + r.Dir}
		if s.MemBytes > 0 {
			sb = append(sb, "--mem="+strconv.FormatInt(max(1, s.MemBytes>>20), 10)+"M")
		}
		if deps := r.submittedDeps(s, sub); len(deps) > 0 {
			sb = append(sb, "--dependency=afterok:"+strings.Join(deps, ":"), "--kill-on-invalid-dep=yes")
		}
		sb = append(append(sb, opt.Sbatch...), path)
		id, err := sbatch(ctx, sb)
		if err != nil {
			return sub, fmt.Errorf("slurm: submit step %s: %w", s.Name, err)
		}
		slog.Info("slurm: submitted", "step", s.Name, "job", id, "array", array)
		sub.Jobs[s.Name] = id
		if err := record(id); err != nil {
			return sub, err
		}
		if opt.OnSubmit != nil {
			opt.OnSubmit(s.Name, id)
		}
		sub.Order = append(sub.Order, s.Name)
		all = append(all, id)
	}
	if !r.Done() {
		args := append(append([]string(nil), base...), "--finalize")
		path := filepath.Join(scripts, "finalize.sh")
		if err := os.WriteFile(path, []byte("#!/bin/sh\n# merge the steps' outputs\nexec "+shellJoin(args)+"\n"), 0o755); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Join(r.Dir, StateDir, "logs"), 0o755); err != nil {
			return nil, err
		}
		sb := []string{"--parsable", "--job-name=smelt-" + r.Recipe.Name + "-finalize",
			"--output=" + filepath.Join(r.Dir, StateDir, "logs", "finalize.log"), "--chdir=" + r.Dir}
		if len(all) > 0 {
			sb = append(sb, "--dependency=afterok:"+strings.Join(all, ":"), "--kill-on-invalid-dep=yes")
		}
		sb = append(append(sb, opt.Sbatch...), path)
		id, err := sbatch(ctx, sb)
		if err != nil {
			return sub, fmt.Errorf("slurm: submit the merge job: %w", err)
		}
		sub.Finalize = id
		if err := record(id); err != nil {
			return sub, err
		}
		if opt.OnSubmit != nil {
			opt.OnSubmit("", id)
		}
		all = append(all, id)
	}
	if !opt.Wait || len(all) == 0 {
		return sub, nil
	}
	poll := func() {
		if opt.OnPoll == nil {
			return
		}
		done, total := 0, 0
		for _, st := range r.Plan.Steps {
			total += len(st.Tasks)
			done += len(st.Tasks) - len(r.Pending(st))
		}
		opt.OnPoll(done, total)
	}
	if err := waitJobs(ctx, all, opt.Poll, poll); err != nil {
		return sub, err
	}
	if !r.Done() {
		var bad []string
		for _, ss := range r.Status() {
			for _, t := range ss.Tasks {
				if t.State != StateDone {
					msg := fmt.Sprintf("%s/%d %s", ss.Step.Name, t.Rank, t.State)
					if t.Marker != nil && t.Marker.Error != "" {
						msg += ": " + t.Marker.Error
					}
					bad = append(bad, msg+" (log "+r.LogPath(ss.Step.Name, t.Rank)+")")
				}
			}
		}
		if len(bad) == 0 {
			bad = append(bad, "the merge job did not finish (log "+filepath.Join(r.Dir, StateDir, "logs", "finalize.log")+")")
		}
		return sub, fmt.Errorf("slurm: the run did not finish:\n  %s", strings.Join(bad, "\n  "))
	}
	return sub, nil
}

// submittedDeps returns the job ids of the steps s needs that were
// submitted now (steps already done need no dependency).
func (r *Run) submittedDeps(s *Step, sub *Submission) []string {
	var out []string
	for _, n := range s.Needs {
		if id, ok := sub.Jobs[n]; ok {
			out = append(out, id)
		}
	}
	return out
}

func sbatch(ctx context.Context, args []string) (string, error) {
	cmd := exec.CommandContext(ctx, "sbatch", args...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("sbatch %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("sbatch: %w", err)
	}
	id := strings.TrimSpace(string(out))
	if i := strings.IndexByte(id, ';'); i >= 0 { // "id;cluster"
		id = id[:i]
	}
	if _, err := strconv.Atoi(id); err != nil {
		return "", fmt.Errorf("sbatch answered %q, not a job id", out)
	}
	return id, nil
}

// liveJobs returns the ids among ids that squeue still lists (as array
// jobs or plain jobs).
func liveJobs(ctx context.Context, ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	out, err := exec.CommandContext(ctx, "squeue", "-h", "-o", "%F %i").Output()
	if err != nil {
		return nil
	}
	queued := map[string]bool{}
	for _, f := range strings.Fields(string(out)) {
		queued[strings.SplitN(f, "_", 2)[0]] = true
	}
	var live []string
	for _, id := range ids {
		if queued[id] {
			live = append(live, id)
		}
	}
	return live
}

// waitJobs polls squeue until none of the jobs (or their array tasks) is
// queued or running.
func waitJobs(ctx context.Context, ids []string, poll time.Duration, onPoll func()) error {
	for {
		onPoll()
		if len(liveJobs(ctx, ids)) == 0 {
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

func joinInts(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, ",")
}

// shellJoin quotes args for /bin/sh.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
