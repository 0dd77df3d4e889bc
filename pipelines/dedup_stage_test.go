package pipelines

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// globalDedupRecipe is the test recipe with a global dedup cut into
// buckets bucket tasks.
func globalDedupRecipe(buckets int) string {
	return strings.Replace(testRecipe(false), "dedup:\n", "dedup:\n  scope: global\n  steps: {bucket: {tasks: "+strconv.Itoa(buckets)+", mem: 1GiB}}\n", 1)
}

// dedupOutputFiles are a run's files outside the intermediate dedup steps
// (whose files are cut by the partitioning): what must not depend on it.
func dedupOutputFiles(t *testing.T, dir string) map[string][]byte {
	out := normFiles(t, dir)
	for k := range out {
		if strings.HasPrefix(k, "dedup-") || k == RecipeFile { // the recipes differ in the bucket tasks
			delete(out, k)
		}
	}
	return out
}

// TestDedupPartitionsSameBytes runs a global dedup with 1 and 8 bucket
// tasks and 1 and 3 workers: the same bytes in every step's output.
func TestDedupPartitionsSameBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("two pipeline runs")
	}
	dir := t.TempDir()
	setupRun(t, dir, false)
	var want map[string][]byte
	for _, c := range []struct{ buckets, workers int }{{1, 1}, {8, 3}} {
		recipe := filepath.Join(dir, "recipe-"+strconv.Itoa(c.buckets)+".yaml")
		if err := os.WriteFile(recipe, []byte(globalDedupRecipe(c.buckets)), 0o644); err != nil {
			t.Fatal(err)
		}
		run := runRecipe(t, recipe, filepath.Join(dir, "run"+strconv.Itoa(c.buckets)), c.workers)
		if n := len(run.Plan.Step("dedup-bucket").Tasks); n != c.buckets {
			t.Fatalf("%d bucket tasks, want %d", n, c.buckets)
		}
		got := dedupOutputFiles(t, run.Dir)
		if _, ok := got[filepath.Join("dedup", "tasks", "00000", "dedup_clusters.json")]; !ok {
			t.Errorf("no cluster report in the first route task")
		}
		if want == nil {
			want = got
			continue
		}
		requireSameFiles(t, want, got, "1 vs 8 bucket tasks")
	}
}
