package pipelines

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/smelt-dev/smelt/internal/testutil"
)

// TestSameNamedFilesAcrossTasks puts two one-document files with the same
// base name in different directories and splits the source so that each
// lands in its own ingest task: the ids must still differ, and be the ones
// a single `smelt ingest` of the whole source gives.
func TestSameNamedFilesAcrossTasks(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"x", "y"} {
		os.MkdirAll(filepath.Join(dir, "pages", d), 0o755)
		os.WriteFile(filepath.Join(dir, "pages", d, "index.txt"), []byte("The page in directory "+d+" says something of its own.\n"), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "pages", "about.txt"), []byte("An about page, alone with its name.\n"), 0o644)
	recipe := filepath.Join(dir, "recipe.yaml")
	os.WriteFile(recipe, []byte(`name: names
sources:
  - name: site
    inputs: [pages]
    format: text
    weight: 1
    tasks: 3
tokenizer:
  name: gpt2
`), 0o644)
	run := runRecipe(t, recipe, filepath.Join(dir, "run"), 2)
	if n := len(run.Plan.Step("ingest-site").Tasks); n != 3 {
		t.Fatalf("%d ingest tasks, want one per file", n)
	}
	var ids []string
	for _, d := range testutil.ReadDocs(t, filepath.Join(run.Dir, "ingest-site")) {
		ids = append(ids, d.ID)
	}
	want := []string{"site/about.txt", "site/x/index.txt", "site/y/index.txt"}
	if !slices.Equal(ids, want) {
		t.Fatalf("ids %v, want %v", ids, want)
	}
}
