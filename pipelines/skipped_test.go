package pipelines

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/smelt-dev/smelt/ingest"
	"github.com/smelt-dev/smelt/shards"
)

// TestRunCountsSkippedInputs checks that smelt run reads a symlinked file
// in an input directory and counts, once per source whatever its task
// count, the entries it cannot read (a dangling link, a FIFO) under their
// reasons, as smelt ingest does (issue 19 item 6).
func TestRunCountsSkippedInputs(t *testing.T) {
	dir := t.TempDir()
	crawl := filepath.Join(dir, "crawl")
	elsewhere := filepath.Join(dir, "elsewhere")
	for _, d := range []string{crawl, elsewhere} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path string, n int) {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, `{"id":"%s-%d","text":"document %d of %s, with a few words of text in it"}`+"\n", filepath.Base(path), i, i, path)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(crawl, "a.jsonl"), 7)
	write(filepath.Join(crawl, "b.jsonl"), 5)
	write(filepath.Join(elsewhere, "linked.jsonl"), 11)
	if err := os.Symlink(filepath.Join(elsewhere, "linked.jsonl"), filepath.Join(crawl, "c.jsonl")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "gone.jsonl"), filepath.Join(crawl, "d.jsonl")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(crawl, "e.jsonl"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	recipe := filepath.Join(dir, "recipe.yaml")
	if err := os.WriteFile(recipe, []byte(`name: t
sources:
  - name: web
    inputs: [crawl]
    format: jsonl
    weight: 1
    tasks: 3
tokenizer:
  name: gpt2
`), 0o644); err != nil {
		t.Fatal(err)
	}
	run := runRecipe(t, recipe, filepath.Join(dir, "run"), 2)
	st, err := shards.ReadStats(filepath.Join(run.Dir, "ingest-web"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Balanced(); err != nil {
		t.Error(err)
	}
	if st.Out.Docs != 7+5+11 {
		t.Errorf("kept %d documents, want %d (the symlinked file's too)", st.Out.Docs, 7+5+11)
	}
	for reason, want := range map[string]int64{ingest.SkipInputDangling: 1, ingest.SkipInputNotRegular: 1} {
		if got := st.Dropped[reason].Docs; got != want {
			t.Errorf("%s counted %d times, want %d (dropped: %v)", reason, got, want, st.Dropped)
		}
	}
	if st.In.Docs != 7+5+11+2 {
		t.Errorf("%d in, want %d: every entry of the directory is accounted for", st.In.Docs, 7+5+11+2)
	}
}
