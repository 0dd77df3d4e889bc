package pipelines

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smelt-dev/smelt/internal/testutil"
)

// slurmAvailable skips the test unless sbatch exists and a Slurm cluster
// answers (pipelines/testdata/slurm/start.sh starts a single-node one).
func slurmAvailable(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("sbatch"); err != nil {
		t.Skip("sbatch not installed: the Slurm executor test needs a Slurm cluster (see pipelines/testdata/slurm/start.sh)")
	}
	out, err := exec.Command("sinfo", "-h", "-o", "%T").Output()
	if err != nil || !strings.Contains(string(out), "idle") && !strings.Contains(string(out), "mix") && !strings.Contains(string(out), "alloc") {
		t.Skipf("no Slurm cluster answers (sinfo: %v, %q): start one with pipelines/testdata/slurm/start.sh and export SLURM_CONF", err, out)
	}
}

// TestSlurmMatchesLocal runs the test recipe with the Slurm executor (one
// job array per step, each task this test binary acting as smelt) and
// checks that its output equals the local executor's byte for byte; then
// that a rerun submits only what is unfinished.
func TestSlurmMatchesLocal(t *testing.T) {
	slurmAvailable(t)
	// Slurm jobs run as root from the run directory; a world-readable
	// temporary directory keeps them able to read it whoever runs the test.
	dir := t.TempDir()
	recipe := setupRun(t, dir, false)
	// A global dedup split into 8 bucket tasks, each asking Slurm for 1 GiB.
	if err := os.WriteFile(recipe, []byte(globalDedupRecipe(8)), 0o644); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(dir, "run")
	want, run := localThenOpen(t, recipe, runDir)
	ctx := testutil.Context(t)
	start := time.Now()
	opt := testSlurmOptions()
	sub, err := run.SubmitSlurm(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("slurm run: %d job arrays + merge in %v", len(sub.Jobs), time.Since(start).Round(time.Millisecond))
	if len(sub.Jobs) != len(run.Plan.Steps) || sub.Finalize == "" {
		t.Errorf("submitted %v (merge %q), want one array per step and a merge job", sub.Order, sub.Finalize)
	}
	requireSameFiles(t, want, shardFiles(t, runDir), "slurm vs local")
	if n := len(run.Plan.Step("dedup-bucket").Tasks); n < 8 {
		t.Errorf("%d bucket tasks, want 8", n)
	}
	if sh, _ := os.ReadFile(filepath.Join(runDir, StateDir, "slurm", "dedup-bucket.sh")); !strings.Contains(string(sh), "GOMEMLIMIT=768MiB") {
		t.Errorf("the bucket step's script sets no GOMEMLIMIT:\n%s", sh)
	}
	for _, s := range run.Plan.Steps {
		for _, tk := range s.Tasks {
			if _, err := os.Stat(run.LogPath(s.Name, tk.Rank)); err != nil {
				t.Errorf("no log for %s/%d: %v", s.Name, tk.Rank, err)
			}
		}
	}

	// Lose one task: a rerun submits that rank only.
	ts := run.Plan.Step("tokenize")
	if err := run.removeTask("tokenize", ts.Tasks[1]); err != nil {
		t.Fatal(err)
	}
	sub, err = run.SubmitSlurm(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(sub.Order, ",") != "tokenize" {
		t.Errorf("rerun submitted %v, want only tokenize", sub.Order)
	}
	script, _ := os.ReadFile(filepath.Join(runDir, StateDir, "slurm", "tokenize.sh"))
	if !strings.Contains(string(script), `"$SLURM_ARRAY_TASK_ID"`) {
		t.Errorf("task script does not take its rank from the array index:\n%s", script)
	}
	requireSameFiles(t, want, shardFiles(t, runDir), "slurm rerun vs local")

	// Nothing left: nothing submitted.
	sub, err = run.SubmitSlurm(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(sub.Jobs) != 0 || sub.Finalize != "" {
		t.Errorf("a finished run submitted %v %q", sub.Order, sub.Finalize)
	}
}

// localThenOpen runs recipe with the local executor into runDir, keeps its
// shard files as the expected output, moves that run aside and opens a
// fresh run of the same recipe in runDir for another executor.
func localThenOpen(t *testing.T, recipe, runDir string) (map[string][]byte, *Run) {
	t.Helper()
	runRecipe(t, recipe, runDir, 2)
	want := shardFiles(t, runDir)
	if err := os.Rename(runDir, runDir+".local"); err != nil {
		t.Fatal(err)
	}
	return want, openRecipe(t, recipe, runDir)
}

// testSlurmOptions submits this test binary (acting as smelt, TestMain) as
// the tasks, two at a time, and waits for them.
func testSlurmOptions() SlurmOptions {
	return SlurmOptions{Command: []string{os.Args[0]}, Parallel: 2, Wait: true, Poll: 300 * time.Millisecond}
}
