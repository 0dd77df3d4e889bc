package pipelines

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

// scopeRecipe is a two-source recipe without filters for the dedup scope
// tests; scope and store (may be empty) fill its dedup section.
func scopeRecipe(scope, store string) string {
	y := `name: scope
shard_mb: 1
sources:
  - name: a
    inputs: [a/*.jsonl]
    format: jsonl
    weight: 0.5
    tasks: 2
  - name: b
    inputs: [b/*.jsonl]
    format: jsonl
    weight: 0.5
dedup:
  exact: true
  minhash: true
  scope: ` + scope + "\n"
	if store != "" {
		y += "  store: " + store + "\n"
	}
	return y + "tokenizer:\n  name: gpt2\n"
}

// writeScopeCorpus writes the sources of scopeRecipe under dir, with ids
// prefixed by prefix: a (two files) and b (one file) of distinct texts,
// plus one text in both ("a-shared" in a's second file, "b-shared" in b)
// and one duplicated within b ("b-dup" repeats "b-3").
func writeScopeCorpus(t *testing.T, dir, prefix string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 5))
	text := func() string { return paragraph(rng, 6, proseWords) + "\n\n" + paragraph(rng, 6, commonWords) }
	shared := text()
	type doc struct{ id, text string }
	files := map[string][]doc{}
	for f := 0; f < 2; f++ {
		name := fmt.Sprintf("a/part-%d.jsonl", f)
		for i := 0; i < 10; i++ {
			files[name] = append(files[name], doc{fmt.Sprintf("a-%d-%d", f, i), text()})
		}
	}
	files["a/part-1.jsonl"] = append(files["a/part-1.jsonl"], doc{"a-shared", shared})
	var b []doc
	for i := 0; i < 8; i++ {
		b = append(b, doc{fmt.Sprintf("b-%d", i), text()})
	}
	b = append(b, doc{"b-shared", shared}, doc{"b-dup", b[3].text})
	files["b/part-0.jsonl"] = b
	for name, docs := range files {
		var buf bytes.Buffer
		for _, d := range docs {
			line, _ := json.Marshal(map[string]string{"id": prefix + d.id, "text": d.text})
			buf.Write(append(line, '\n'))
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// tokenIDs returns the document ids in a token-shard directory, in order,
// checking that every row has the given source.
func tokenIDs(t *testing.T, dir, source string) []string {
	t.Helper()
	m, err := shards.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range m.Shards {
		info := s
		ts, err := shards.ReadTokenShard(filepath.Join(dir, s.Name), &info, m.Tokenizer.VocabSize)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < ts.Rows(); i++ {
			if ts.Source(i) != source {
				t.Errorf("%s: %s has source %q, want %q", dir, ts.ID(i), ts.Source(i), source)
			}
			ids = append(ids, ts.ID(i))
		}
	}
	if len(m.Sources) > 1 || (len(ids) > 0 && m.Sources[source].Rows != int64(len(ids))) {
		t.Errorf("%s: manifest sources %+v for %d documents of %s", dir, m.Sources, len(ids), source)
	}
	return ids
}

// TestDedupScope runs the same two sources with dedup scope source and
// global: a text in both sources is kept in both under scope source and
// dropped exactly once (in the later source) under scope global, a text
// repeated within a source is dropped either way, each source's token
// shards hold only its own documents, and the global run's output is the
// same with 1 and 3 workers. A global run's store then makes a second run
// over the same texts (new ids) drop everything.
func TestDedupScope(t *testing.T) {
	dir := t.TempDir()
	writeScopeCorpus(t, dir, "")
	run := func(scope, store, runDir string, workers int) *Run {
		recipe := filepath.Join(dir, "recipe-"+scope+".yaml")
		if err := os.WriteFile(recipe, []byte(scopeRecipe(scope, store)), 0o644); err != nil {
			t.Fatal(err)
		}
		return runRecipe(t, recipe, filepath.Join(dir, runDir), workers)
	}
	var aIDs []string
	for f := 0; f < 2; f++ {
		for i := 0; i < 10; i++ {
			aIDs = append(aIDs, fmt.Sprintf("a/a-%d-%d", f, i))
		}
		if f == 1 {
			aIDs = append(aIDs, "a/a-shared")
		}
	}
	// (ingest prefixes ids with the source's name)
	bIDs := []string{"b/b-0", "b/b-1", "b/b-2", "b/b-3", "b/b-4", "b/b-5", "b/b-6", "b/b-7", "b/b-shared"}

	src := run("source", "", "source", 2)
	if n := len(src.Plan.Step("dedup-cluster").Tasks); n != 2 {
		t.Fatalf("scope source: %d dedup groups", n)
	}
	if got := tokenIDs(t, filepath.Join(src.Dir, "tokenize", "tasks", "a"), "a"); !slices.Equal(got, aIDs) {
		t.Errorf("scope source, a: %v", got)
	}
	if got := tokenIDs(t, filepath.Join(src.Dir, "tokenize", "tasks", "b"), "b"); !slices.Equal(got, bIDs) {
		t.Errorf("scope source, b: %v", got)
	}
	st, err := shards.ReadStats(filepath.Join(src.Dir, "dedup"))
	if err != nil {
		t.Fatal(err)
	}
	if st.In.Docs != 31 || st.Out.Docs != 30 || st.Dropped["dedup:exact"].Docs != 1 {
		t.Errorf("scope source dedup: in %d out %d dropped %v", st.In.Docs, st.Out.Docs, st.Dropped)
	}

	glob := run("global", "", "global", 1)
	if n := len(glob.Plan.Step("dedup-cluster").Tasks); n != 1 {
		t.Fatalf("scope global: %d dedup groups", n)
	}
	if got := tokenIDs(t, filepath.Join(glob.Dir, "tokenize", "tasks", "a"), "a"); !slices.Equal(got, aIDs) {
		t.Errorf("scope global, a: %v", got)
	}
	if got := tokenIDs(t, filepath.Join(glob.Dir, "tokenize", "tasks", "b"), "b"); !slices.Equal(got, bIDs[:8]) {
		t.Errorf("scope global, b: %v", got)
	}
	st, err = shards.ReadStats(filepath.Join(glob.Dir, "dedup"))
	if err != nil {
		t.Fatal(err)
	}
	if st.In.Docs != 31 || st.Out.Docs != 29 || st.Dropped["dedup:exact"].Docs != 2 {
		t.Errorf("scope global dedup: in %d out %d dropped %v", st.In.Docs, st.Out.Docs, st.Dropped)
	}
	dropped := map[string]string{}
	r, err := shards.OpenDocDirs(filepath.Join(glob.Dir, "dedup", shards.DroppedDir))
	if err != nil {
		t.Fatal(err)
	}
	for {
		d, err := r.Next()
		if err != nil {
			break
		}
		if d.Drop != nil {
			dropped[d.ID] = d.Drop.DupOf
		}
	}
	r.Close()
	if len(dropped) != 2 || dropped["b/b-shared"] != "a/a-shared" || dropped["b/b-dup"] != "b/b-3" {
		t.Errorf("scope global dropped %v", dropped)
	}
	// The merged token shards count each source once, and add up.
	tst, err := shards.ReadStats(filepath.Join(glob.Dir, "tokenize"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tst.Balanced(); err != nil || tst.In.Docs != 29 {
		t.Errorf("scope global tokenize: %d documents in, %v", tst.In.Docs, err)
	}
	tm, err := shards.ReadManifest(filepath.Join(glob.Dir, "tokenize"))
	if err != nil {
		t.Fatal(err)
	}
	if tm.Sources["a"].Rows != 21 || tm.Sources["b"].Rows != 8 {
		t.Errorf("scope global token sources %+v", tm.Sources)
	}

	glob3 := run("global", "", "global3", 3)
	requireSameFiles(t, normFiles(t, glob.Dir), normFiles(t, glob3.Dir), "scope global, workers 1 vs 3")

	// A store with scope global: one store for all sources, and a second
	// run over the same texts under new ids drops every document.
	store := filepath.Join(dir, "stores")
	first := run("global", store, "store1", 2)
	if _, err := os.Stat(filepath.Join(store, GlobalStoreName)); err != nil {
		t.Fatalf("no global store: %v", err)
	}
	if ents, _ := os.ReadDir(store); len(ents) != 1 {
		t.Errorf("store directory holds %d entries, want only %s", len(ents), GlobalStoreName)
	}
	if got := tokenIDs(t, filepath.Join(first.Dir, "tokenize", "tasks", "b"), "b"); !slices.Equal(got, bIDs[:8]) {
		t.Errorf("scope global with a store, b: %v", got)
	}
	dir2 := filepath.Join(dir, "next")
	writeScopeCorpus(t, dir2, "next-")
	recipe2 := filepath.Join(dir2, "recipe.yaml")
	if err := os.WriteFile(recipe2, []byte(scopeRecipe("global", store)), 0o644); err != nil {
		t.Fatal(err)
	}
	second := runRecipe(t, recipe2, filepath.Join(dir, "store2"), 2)
	st, err = shards.ReadStats(filepath.Join(second.Dir, "dedup"))
	if err != nil {
		t.Fatal(err)
	}
	if st.In.Docs != 31 || st.Out.Docs != 0 {
		t.Errorf("second run with the global store: in %d out %d dropped %v", st.In.Docs, st.Out.Docs, st.Dropped)
	}
	if !strings.Contains(string(mustRead(t, filepath.Join(second.Dir, RecipeFile))), "scope: global") {
		t.Error("the resolved recipe does not record scope: global")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
