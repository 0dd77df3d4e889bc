package pipelines

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
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
