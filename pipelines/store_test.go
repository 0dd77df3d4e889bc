package pipelines

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/internal/testutil"
)

// s3Recipe writes the test corpus, uploads its crawl files to the store and
// returns a recipe whose crawl source reads them from there (a key glob).
func s3Recipe(t *testing.T, dir string) string {
	t.Helper()
	s3 := testutil.StartS3(t, "crawl")
	recipe := setupRun(t, dir, false)
	files, _ := filepath.Glob(filepath.Join(dir, "crawl", "*.jsonl"))
	if len(files) == 0 {
		t.Fatal("no crawl files")
	}
	for _, f := range files {
		s3.Put(t, "crawl", "c/"+filepath.Base(f), f)
	}
	y := strings.Replace(testRecipe(false), "inputs: [crawl/*.jsonl]", "inputs: [s3://crawl/c/*.jsonl]", 1)
	if !strings.Contains(y, "s3://") {
		t.Fatal("the test recipe changed: no crawl input to replace")
	}
	if err := os.WriteFile(recipe, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return recipe
}

// TestS3InputsPlanAndRun plans a source whose inputs are s3:// objects:
// the planner splits them into tasks by their sizes like local files, and
// the run gives the bytes of the same recipe on the local files.
func TestS3InputsPlanAndRun(t *testing.T) {
	dir := t.TempDir()
	recipe := setupRun(t, dir, false)
	runDir := filepath.Join(dir, "run")
	runRecipe(t, recipe, runDir, 2)
	want := shardFiles(t, runDir)
	if err := os.RemoveAll(runDir); err != nil {
		t.Fatal(err)
	}
	s3r := s3Recipe(t, dir)
	run := runRecipe(t, s3r, runDir, 2)
	st := run.Plan.Step("ingest-crawl")
	if st == nil || len(st.Tasks) != 3 || !strings.HasPrefix(st.Tasks[0].Files[0].Path, "s3://crawl/c/") || st.Tasks[0].Files[0].Bytes == 0 {
		t.Fatalf("plan of the s3:// source: %+v", st)
	}
	got := shardFiles(t, runDir)
	// Manifests name the inputs (s3:// URLs here) and carry fingerprints
	// made from them, and so differ, as does the recipe; shards, stats,
	// models and the tokenizer must not.
	for k := range want {
		if filepath.Base(k) == "manifest.json" || k == RecipeFile {
			delete(want, k)
			delete(got, k)
		}
	}
	requireSameFiles(t, want, got, "s3:// inputs vs local files")
}

// TestSlurmTasksReadS3Inputs runs a recipe with s3:// inputs on a real
// Slurm cluster: every task reads its objects straight from the store
// (the submitting environment's AWS settings reach the jobs), and the
// output equals the local executor's byte for byte.
func TestSlurmTasksReadS3Inputs(t *testing.T) {
	slurmAvailable(t)
	dir := t.TempDir()
	recipe := s3Recipe(t, dir)
	runDir := filepath.Join(dir, "run")
	want, run := localThenOpen(t, recipe, runDir)
	ctx := testutil.Context(t)
	if _, err := run.SubmitSlurm(ctx, testSlurmOptions()); err != nil {
		t.Fatal(err)
	}
	requireSameFiles(t, want, shardFiles(t, runDir), "slurm vs local, s3:// inputs")
}
