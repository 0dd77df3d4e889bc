package pipelines

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/internal/testutil"
)

// clusterTasksRecipe is the test recipe with a global dedup (URL dedup
// and verify on) whose cluster step is cut into n tasks.
func clusterTasksRecipe(n int) string {
	return strings.Replace(testRecipe(false), "dedup:\n", "dedup:\n  scope: global\n  url: true\n  verify: survivor\n  steps: {bucket: {tasks: 2}, cluster: {tasks: "+strconv.Itoa(n)+", rounds: 6}}\n", 1)
}

// decisionLines returns the lines of every decision file under the
// step directories named, sorted: the decisions as a set of lines.
func decisionLines(t *testing.T, run string, steps ...string) []string {
	t.Helper()
	var lines []string
	for _, s := range steps {
		files, _ := filepath.Glob(filepath.Join(run, s, "tasks", "*", "dec-*.jsonl"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if l != "" {
					lines = append(lines, filepath.Base(f)+" "+l)
				}
			}
		}
	}
	slices.Sort(lines)
	return lines
}

// TestDedupClusterTasksSameBytes runs a recipe's dedup with the single
// cluster task and with the cluster step cut into 3 partitions (6
// planned components rounds, joins, decision tasks, merge): the same
// bytes in every output (kept and dropped shards, stats, manifests, the
// cluster report, the merged decision), and the same decision lines.
func TestDedupClusterTasksSameBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("two pipeline runs")
	}
	dir := t.TempDir()
	setupRun(t, dir, false)
	var want map[string][]byte
	var wantLines []string
	for _, n := range []int{1, 3} {
		recipe := filepath.Join(dir, "recipe-"+strconv.Itoa(n)+".yaml")
		if err := os.WriteFile(recipe, []byte(clusterTasksRecipe(n)), 0o644); err != nil {
			t.Fatal(err)
		}
		run := runRecipe(t, recipe, filepath.Join(dir, "run"+strconv.Itoa(n)), 2)
		got := dedupOutputFiles(t, run.Dir)
		for _, f := range []string{"result.json", "dedup_clusters.json"} {
			p := filepath.Join("dedup-cluster", "tasks", "00000", f)
			b, err := os.ReadFile(filepath.Join(run.Dir, p))
			if err != nil {
				t.Fatal(err)
			}
			got[p] = bytes.ReplaceAll(b, []byte(run.Dir), []byte("RUN_DIR"))
		}
		lines := decisionLines(t, run.Dir, "dedup-cluster", stepDedupDecide)
		if n == 1 {
			if run.Plan.Step(stepDedupDecide) != nil || run.Plan.Step(ccStepName(1)) != nil {
				t.Fatal("1 cluster task planned the partitioned steps")
			}
			dropped := 0
			for _, l := range lines {
				if strings.Contains(l, `"reason"`) {
					dropped++
				}
			}
			if dropped < 5 {
				t.Fatalf("%d documents dropped: the corpus is not what the test needs", dropped)
			}
			want, wantLines = got, lines
			continue
		}
		for _, s := range []string{ccStepName(1), ccStepName(6), stepDedupJoin, stepDedupDecide} {
			if st := run.Plan.Step(s); st == nil || len(st.Tasks) != n {
				t.Fatalf("step %s: want %d tasks", s, n)
			}
		}
		if len(run.Plan.Step("dedup-cluster").Tasks) != 1 {
			t.Fatal("want one merge task")
		}
		requireSameFiles(t, want, got, "1 vs 3 cluster tasks")
		if !slices.Equal(lines, wantLines) {
			t.Errorf("decision lines: %d with 3 cluster tasks, %d with 1; they differ", len(lines), len(wantLines))
		}
	}
}

// TestDedupClusterTasksSlurmScripts submits a recipe whose cluster step
// is cut into 3 partitions to a stand-in sbatch that records each job,
// then runs the recorded job scripts as Slurm would (every array index of
// a job once the jobs it depends on are done, then the merge job): each
// round is its own array depending on the previous round, and the output
// is the local executor's, byte for byte. (TestSlurmMatchesLocal needs a
// real Slurm cluster.)
func TestDedupClusterTasksSlurmScripts(t *testing.T) {
	// Every task a process of the test binary: 2.7 minutes on the shared
	// 2-core machine.
	testutil.Thorough(t)
	dir := t.TempDir()
	setupRun(t, dir, false)
	recipe := filepath.Join(dir, "recipe.yaml")
	if err := os.WriteFile(recipe, []byte(clusterTasksRecipe(3)), 0o644); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(dir, "run")
	want, run := localThenOpen(t, recipe, runDir)
	bin := filepath.Join(dir, "bin")
	jobs := filepath.Join(dir, "jobs")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	// sbatch: one line per job, "ID ARGS...", and the id on stdout.
	fake := "#!/bin/sh\nn=$(($(wc -l < " + jobs + " 2>/dev/null || echo 0) + 1))\necho \"$n $*\" >> " + jobs + "\necho $n\n"
	if err := os.WriteFile(filepath.Join(bin, "sbatch"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	sub, err := run.SubmitSlurm(context.Background(), SlurmOptions{Command: []string{os.Args[0]}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(jobs)
	if err != nil {
		t.Fatal(err)
	}
	done := map[string]bool{}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, l := range lines { // submitted in dependency order
		f := strings.Fields(l)
		id, script, array := f[0], f[len(f)-1], ""
		for _, a := range f[1 : len(f)-1] {
			if v, ok := strings.CutPrefix(a, "--array="); ok {
				array = v
			}
			if v, ok := strings.CutPrefix(a, "--dependency=afterok:"); ok {
				for _, d := range strings.Split(v, ":") {
					if !done[d] {
						t.Fatalf("job %s (%s) depends on %s, not run before it", id, script, d)
					}
				}
			}
		}
		ranks := []string{""}
		if array != "" {
			ranks = strings.Split(array, ",")
		}
		for _, r := range ranks {
			cmd := exec.Command("/bin/sh", script)
			cmd.Dir = runDir
			cmd.Env = append(os.Environ(), "SLURM_ARRAY_TASK_ID="+r)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s rank %s: %v\n%s", script, r, err, out)
			}
		}
		done[id] = true
	}
	for _, s := range []string{ccStepName(1), ccStepName(2), ccStepName(6), stepDedupJoin, stepDedupDecide, "dedup-cluster"} {
		if sub.Jobs[s] == "" {
			t.Errorf("no job array for step %s", s)
		}
	}
	if sub.Jobs[ccStepName(2)] == sub.Jobs[ccStepName(1)] || !strings.Contains(string(b), "--dependency=afterok:"+sub.Jobs[ccStepName(1)]+" ") {
		t.Errorf("round 2 does not wait for round 1:\n%s", b)
	}
	if !run.Done() {
		t.Fatal("the run is not done after its Slurm scripts")
	}
	requireSameFiles(t, want, shardFiles(t, runDir), "slurm scripts vs local")
}
