package pipelines

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/smelt-dev/smelt/shards"
)

// Files a run directory holds besides the step directories.
const (
	RecipeFile = "recipe.yaml"
	RunInfo    = "run.json"
	StateDir   = ".smelt"
	PlanFile   = "plan.json"
)

// Run is an opened run directory: its resolved recipe and plan.
type Run struct {
	// Dir is the run directory (absolute).
	Dir      string
	Recipe   *Recipe
	Plan     *Plan
	Registry *Registry
}

// RunInfoFile is run.json's content.
type RunInfoFile struct {
	// Version is the smelt binary's version that created the run, and
	// LastVersion the one that last opened it.
	Version     string    `json:"version"`
	LastVersion string    `json:"last_version"`
	Created     time.Time `json:"created"`
	RecipeHash  string    `json:"recipe_hash"`
}

// OpenOptions configure Open.
type OpenOptions struct {
	// Force accepts a recipe (or inputs) that differ from the ones the run
	// directory was started with: tasks whose fingerprint changed are
	// removed and run again; unchanged ones are kept.
	Force bool
	// Version is the smelt binary's version, recorded in run.json.
	Version string
	// Registry runs the stages (nil = DefaultRegistry()).
	Registry *Registry
}

// Open creates or reopens the run directory dir for recipe r: it records the
// resolved recipe, the binary version and the plan. Reopening with another
// recipe, or after the inputs changed, is refused unless opt.Force.
func Open(dir string, r *Recipe, opt OpenOptions) (*Run, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	logWarnings(r)
	// Work from the recipe as tasks will read it back from recipe.yaml
	// (a YAML round trip turns, for example, absent lists into empty ones,
	// which fingerprints would tell apart).
	if r, err = canonical(r); err != nil {
		return nil, err
	}
	plan, err := NewPlan(r)
	if err != nil {
		return nil, err
	}
	y, err := r.redactedYAML()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(abs, StateDir), 0o755); err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	run := &Run{Dir: abs, Recipe: r, Plan: plan, Registry: opt.Registry}
	if run.Registry == nil {
		run.Registry = DefaultRegistry()
	}
	info := RunInfoFile{Version: opt.Version, LastVersion: opt.Version, Created: time.Now().UTC(), RecipeHash: plan.RecipeHash}
	if old, err := os.ReadFile(filepath.Join(abs, RecipeFile)); err == nil {
		if !bytes.Equal(old, y) && !opt.Force {
			return nil, fmt.Errorf("%s was started with another recipe (see %s): use --force to run the new recipe there (changed tasks are redone), or choose another --run-dir",
				abs, filepath.Join(abs, RecipeFile))
		}
		var prev RunInfoFile
		if data, err := os.ReadFile(filepath.Join(abs, RunInfo)); err == nil && json.Unmarshal(data, &prev) == nil {
			info.Version, info.Created = prev.Version, prev.Created
		}
		if oldPlan, err := readPlan(abs); err == nil {
			if err := run.reconcile(oldPlan, opt.Force); err != nil {
				return nil, err
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	if err := shards.WriteFileAtomic(filepath.Join(abs, RecipeFile), y); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(abs, RunInfo), info); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(abs, StateDir, PlanFile), plan); err != nil {
		return nil, err
	}
	return run, nil
}

// canonical returns r as parsed back from its resolved YAML.
func canonical(r *Recipe) (*Recipe, error) {
	y, err := r.YAML()
	if err != nil {
		return nil, err
	}
	c, err := ParseRecipe(y, "/")
	if err != nil {
		return nil, fmt.Errorf("resolved recipe does not parse back: %w", err)
	}
	// Errors found later (an input missing when planning) name the
	// user's file and its lines; the settings are in the same places.
	c.node, c.file = r.node, r.file
	return c, nil
}

// OpenExisting opens a run directory that Open prepared, with its recorded
// recipe and plan, as a task or `smelt status` does.
func OpenExisting(dir string, reg *Registry) (*Run, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(abs, RecipeFile))
	if err != nil {
		return nil, fmt.Errorf("%s is not a smelt run directory: %w", abs, err)
	}
	r, err := ParseRecipe(data, abs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(abs, RecipeFile), err)
	}
	plan, err := readPlan(abs)
	if err != nil {
		return nil, err
	}
	if reg == nil {
		reg = DefaultRegistry()
	}
	return &Run{Dir: abs, Recipe: r, Plan: plan, Registry: reg}, nil
}

func readPlan(dir string) (*Plan, error) {
	path := filepath.Join(dir, StateDir, PlanFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("run plan: %w", err)
	}
	var p Plan
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &p, nil
}

// reconcile compares the new plan with the one a run directory holds. Done
// tasks whose fingerprint changed (other settings or inputs) make the open
// fail unless force, which removes their outputs and markers.
func (r *Run) reconcile(old *Plan, force bool) error {
	for _, os := range old.Steps {
		ns := r.Plan.Step(os.Name)
		for _, ot := range os.Tasks {
			var nt *Task
			if ns != nil && ot.Rank < len(ns.Tasks) {
				nt = ns.Tasks[ot.Rank]
			}
			if nt != nil && nt.Fingerprint == ot.Fingerprint && nt.Out == ot.Out {
				continue
			}
			m, _ := r.readMarker(os.Name, ot.Rank)
			if m == nil && !dirExists(filepath.Join(r.Dir, ot.Out)) {
				continue
			}
			if !force {
				return fmt.Errorf("%s: task %s/%d was done with other settings or inputs (the input files changed?): use --force to redo it", r.Dir, os.Name, ot.Rank)
			}
			slog.Info("recipe changed: removing task output", "step", os.Name, "rank", ot.Rank)
			if err := r.removeTask(os.Name, ot); err != nil {
				return err
			}
		}
		if os.Merge && (ns == nil || ns.Fingerprint != os.Fingerprint) {
			if err := removeMerged(filepath.Join(r.Dir, os.Name)); err != nil {
				return err
			}
			_ = removeIfExists(r.mergeMarker(os.Name))
		}
	}
	return nil
}

func (r *Run) removeTask(step string, t *Task) error {
	for _, p := range []string{r.markerPath(step, t.Rank, doneExt), r.markerPath(step, t.Rank, failedExt), r.markerPath(step, t.Rank, runningExt)} {
		if err := removeIfExists(p); err != nil {
			return err
		}
	}
	return os.RemoveAll(filepath.Join(r.Dir, t.Out))
}

// Marker file extensions.
const (
	doneExt    = ".done"
	runningExt = ".running"
	failedExt  = ".failed"
)

// Marker is the content of a task's marker file.
type Marker struct {
	Step        string    `json:"step"`
	Rank        int       `json:"rank"`
	Fingerprint string    `json:"fingerprint"`
	Host        string    `json:"host,omitempty"`
	PID         int       `json:"pid,omitempty"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end,omitzero"`
	Seconds     float64   `json:"seconds,omitempty"`
	// In, Out and Dropped summarise the task's stats (documents).
	In      int64 `json:"in,omitempty"`
	Out     int64 `json:"out,omitempty"`
	Dropped int64 `json:"dropped,omitempty"`
	Errors  int64 `json:"errors,omitempty"`
	// Error is the failure of a failed task.
	Error string `json:"error,omitempty"`
	// Stats is the task's full stats, when the stage produced them.
	Stats *shards.Stats `json:"stats,omitempty"`
}

func (r *Run) markerPath(step string, rank int, ext string) string {
	return filepath.Join(r.Dir, StateDir, "tasks", step, strconv.Itoa(rank)+ext)
}

func (r *Run) mergeMarker(step string) string {
	return filepath.Join(r.Dir, StateDir, "tasks", step, "merge.done")
}

// LogPath is where the Slurm executor writes a task's log.
func (r *Run) LogPath(step string, rank int) string {
	return filepath.Join(r.Dir, StateDir, "logs", step, strconv.Itoa(rank)+".log")
}

func (r *Run) readMarker(step string, rank int) (*Marker, error) {
	return readMarkerFile(r.markerPath(step, rank, doneExt))
}

func readMarkerFile(path string) (*Marker, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var m Marker
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &m, nil
}

// TaskDone reports whether the task has a completion marker with its
// current fingerprint.
func (r *Run) TaskDone(step *Step, t *Task) bool {
	m, err := r.readMarker(step.Name, t.Rank)
	return err == nil && m != nil && m.Fingerprint == t.Fingerprint
}

// Pending lists the ranks of step that are not done.
func (r *Run) Pending(step *Step) []int {
	var out []int
	for _, t := range step.Tasks {
		if !r.TaskDone(step, t) {
			out = append(out, t.Rank)
		}
	}
	return out
}

// TaskOptions configure RunTask.
type TaskOptions struct {
	// Workers is the parallelism inside the task (0 = all cores); output
	// does not depend on it.
	Workers int
	// Progress, if set, receives the task's progress in bytes of input.
	Progress func(done, total int64)
}

// RunTask runs one task of a step unless it is already done: the stage
// writes its outputs atomically (resuming where a killed attempt stopped),
// then the task's completion marker is written. A failure leaves a marker
// with the error for `smelt status`.
func (r *Run) RunTask(ctx context.Context, stepName string, rank int, opt TaskOptions) error {
	step := r.Plan.Step(stepName)
	if step == nil {
		return fmt.Errorf("run %s has no step %q", r.Dir, stepName)
	}
	if rank < 0 || rank >= len(step.Tasks) {
		return fmt.Errorf("step %s has tasks 0..%d, not %d", stepName, len(step.Tasks)-1, rank)
	}
	t := step.Tasks[rank]
	if r.TaskDone(step, t) {
		return nil
	}
	for _, need := range step.Needs {
		ns := r.Plan.Step(need)
		if p := r.Pending(ns); len(p) > 0 {
			return fmt.Errorf("task %s/%d needs step %s, whose tasks %v are not done", stepName, rank, need, p)
		}
	}
	def := r.Registry.Stage(step.Kind)
	if def == nil {
		return fmt.Errorf("step %s: no stage %q in the registry", stepName, step.Kind)
	}
	host, _ := os.Hostname()
	m := &Marker{Step: stepName, Rank: rank, Fingerprint: t.Fingerprint, Host: host, PID: os.Getpid(), Start: time.Now().UTC()}
	if err := writeJSON(r.markerPath(stepName, rank, runningExt), m); err != nil {
		return err
	}
	slog.Debug("task start", "step", stepName, "rank", rank)
	st, err := def.Run(&TaskContext{Ctx: ctx, Run: r, Step: step, Task: t, Workers: opt.Workers, Progress: opt.Progress})
	m.End = time.Now().UTC()
	m.Seconds = m.End.Sub(m.Start).Seconds()
	if err != nil {
		err = fmt.Errorf("task %s/%d: %w", stepName, rank, err)
		if ctx.Err() == nil { // an interrupt is not a failure of the task
			m.Error = err.Error()
			if werr := writeJSON(r.markerPath(stepName, rank, failedExt), m); werr != nil {
				slog.Warn("cannot write failure marker", "err", werr)
			}
		}
		_ = removeIfExists(r.markerPath(stepName, rank, runningExt))
		return err
	}
	if st != nil {
		m.Stats = st
		m.In, m.Out = st.In.Docs, st.Out.Docs
		m.Dropped, m.Errors = shards.SumCounts(st.Dropped).Docs, shards.SumCounts(st.Errors).Docs
	}
	if err := writeJSON(r.markerPath(stepName, rank, doneExt), m); err != nil {
		return err
	}
	_ = removeIfExists(r.markerPath(stepName, rank, failedExt))
	_ = removeIfExists(r.markerPath(stepName, rank, runningExt))
	slog.Debug("task done", "step", stepName, "rank", rank, "seconds", m.Seconds)
	return nil
}

// Finalize merges the outputs of every finished merge step that is not
// merged yet into its step directory. It is idempotent.
func (r *Run) Finalize() error {
	for _, s := range r.Plan.Steps {
		if !s.Merge || len(r.Pending(s)) > 0 {
			continue
		}
		if err := r.MergeStep(s); err != nil {
			return err
		}
	}
	return nil
}

// MergeStep merges a finished step's task outputs into its directory: the
// shards (hard links, renumbered), dropped/, stats.json (exactly merged)
// and manifest.json last.
func (r *Run) MergeStep(s *Step) error {
	if m, err := readMarkerFile(r.mergeMarker(s.Name)); err == nil && m != nil && m.Fingerprint == s.Fingerprint {
		return nil
	}
	dirs := make([]string, len(s.Tasks))
	for i, t := range s.Tasks {
		dirs[i] = filepath.Join(r.Dir, t.Out)
	}
	if err := mergeShardDirs(filepath.Join(r.Dir, s.Name), s.Fingerprint, dirs); err != nil {
		return fmt.Errorf("merge %s: %w", s.Name, err)
	}
	if s.Kind == KindTokenize {
		// RUN_DIR/mix.yaml: the token shards per source with the recipe's
		// weights, for smelt mix plan and smelt train.
		if _, err := writeMix(r, r.Dir); err != nil {
			return err
		}
	}
	return writeJSON(r.mergeMarker(s.Name), &Marker{Step: s.Name, Rank: -1, Fingerprint: s.Fingerprint, Start: time.Now().UTC()})
}

// Done reports whether every task is done and every merge step merged.
func (r *Run) Done() bool {
	for _, s := range r.Plan.Steps {
		if len(r.Pending(s)) > 0 {
			return false
		}
		if s.Merge {
			if m, err := readMarkerFile(r.mergeMarker(s.Name)); err != nil || m == nil || m.Fingerprint != s.Fingerprint {
				return false
			}
		}
	}
	return true
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return shards.WriteFileAtomic(path, append(data, '\n'))
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func fileSHA256(path string) (string, int64, error) { return shards.FileSHA256(path) }
