package pipelines

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/report"
	"github.com/smelt-dev/smelt/shards"
)

// readmeRecipe returns the README's "first recipe" block.
func readmeRecipe(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := bytes.Cut(data, []byte("<!-- first-recipe"))
	if !ok {
		t.Fatal("README.md has no <!-- first-recipe --> block")
	}
	block, _, ok := bytes.Cut(rest, []byte("<!-- /first-recipe -->"))
	if !ok {
		t.Fatal("README.md's first-recipe block is not closed")
	}
	_, y, ok := bytes.Cut(block, []byte("```yaml\n"))
	if !ok {
		t.Fatal("first-recipe block has no ```yaml fence")
	}
	y, _, _ = bytes.Cut(y, []byte("```"))
	return string(y)
}

// TestReadmeFirstRecipe parses and runs the README's first recipe, as a
// newcomer would, on generated JSONL in crawl/: it must fit in about ten
// lines, run every step, and give token shards and a JSONL export.
func TestReadmeFirstRecipe(t *testing.T) {
	y := readmeRecipe(t)
	if n := strings.Count(strings.TrimSpace(y), "\n") + 1; n > 12 {
		t.Errorf("the first recipe has %d lines; the README promises about ten", n)
	}
	dir := t.TempDir()
	writeCorpus(t, dir, 2, 40)
	path := filepath.Join(dir, "first.yaml")
	if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := LoadRecipe(path)
	if err != nil {
		t.Fatalf("the README's first recipe does not parse: %v", err)
	}
	if w := r.Warnings(); len(w) != 0 {
		t.Errorf("the README's first recipe draws warnings: %q", w)
	}
	run, err := Open(filepath.Join(dir, "runs", "first"), r, OpenOptions{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.RunLocal(context.Background(), LocalOptions{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(run.Dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	t.Logf("run directory: %v", names)
	m, err := shards.ReadManifest(filepath.Join(run.Dir, "tokenize"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Totals.Tokens == 0 {
		t.Error("tokenize holds no tokens")
	}
	st, err := shards.ReadStats(filepath.Join(run.Dir, "filter-web"))
	if err != nil {
		t.Fatal(err)
	}
	if st.In.Docs != 80 || st.Out.Docs == 0 || st.Out.Docs == st.In.Docs {
		t.Errorf("filter-web: %d in, %d out; want 80 in and some (not all) kept", st.In.Docs, st.Out.Docs)
	}
	if parts, _ := filepath.Glob(filepath.Join(run.Dir, "export-jsonl", "part-*.jsonl.zst")); len(parts) == 0 {
		t.Error("export-jsonl wrote no part-*.jsonl.zst")
	}
	// smelt report's headline lists the export with its path, and the
	// final documents are those the export holds.
	rr, err := report.Load(run.Dir, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := report.Build(context.Background(), rr)
	if err != nil {
		t.Fatal(err)
	}
	h := rep.Headline
	if h == nil || len(h.Exports) != 1 || h.Exports[0].Path != filepath.Join(run.Dir, "export-jsonl") || h.Exports[0].Format != "jsonl" ||
		len(h.Exports[0].Files) == 0 || h.Exports[0].Docs != h.Final.Docs || h.Final.Docs != m.Totals.Rows {
		t.Errorf("report headline: %+v", h)
	}
}

// TestMixNamesSources: the run's mix.yaml points at token directories named
// after their sources, not at task numbers.
func TestMixNamesSources(t *testing.T) {
	dir := t.TempDir()
	path := setupRun(t, dir, false)
	r, err := LoadRecipe(path)
	if err != nil {
		t.Fatal(err)
	}
	run, err := Open(filepath.Join(dir, "run"), r, OpenOptions{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.RunLocal(context.Background(), LocalOptions{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(run.Dir, MixFileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: crawl\n      path: tokenize/tasks/crawl\n", "name: books\n      path: tokenize/tasks/books\n"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("mix.yaml lacks %q:\n%s", want, data)
		}
	}
	m, err := shards.LoadMix(filepath.Join(run.Dir, MixFileName))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Sources) != 2 || m.Sources[0].Tokens() == 0 || m.Sources[1].Tokens() == 0 {
		t.Errorf("mix.yaml does not load to two sources with tokens")
	}
}
