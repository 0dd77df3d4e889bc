package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/internal/testutil"
)

// TestExportVerb runs smelt export as a user does, on the real pages
// shipped in go-trafilatura ingested and tokenized by smelt: the Megatron
// blend it prints, the refusal of a vocabulary nanoGPT cannot hold, a
// rerun that does nothing, and DuckDB counting the documents per source of
// the Parquet export that `smelt stats --json` counts.
func TestExportVerb(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	pages := testutil.TrafilaturaPages(t, 40)
	dir := t.TempDir()
	docs, toks, wide := filepath.Join(dir, "docs"), filepath.Join(dir, "toks"), filepath.Join(dir, "wide")
	for _, args := range [][]string{
		append(append([]string{"ingest"}, pages...), "--out", docs, "--source", "web"),
		{"tokenize", docs, "--out", toks, "--tokenizer", "gpt2"},
		{"tokenize", docs, "--out", wide, "--tokenizer", "cl100k_base"},
	} {
		if out, err := runSmelt(t, args...); err != nil {
			t.Fatalf("smelt %s: %v\n%s", args[0], err, out)
		}
	}
	mg := filepath.Join(dir, "mg")
	out, err := runSmelt(t, "export", toks, "--format", "megatron", "--out", mg)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	abs, _ := filepath.Abs(filepath.Join(mg, "toks"))
	if !strings.Contains(out, "--data-path 1 "+abs+"\n") {
		t.Errorf("smelt export megatron does not print the blend with its path:\n%s", out)
	}
	if out, err := runSmelt(t, "export", toks, "--format", "megatron", "--out", mg); err != nil {
		t.Errorf("a finished export run again: %v\n%s", err, out)
	}
	if _, err := runSmelt(t, "export", wide, "--format", "nanogpt", "--out", filepath.Join(dir, "ng")); err == nil || !strings.Contains(err.Error(), "uint16") {
		t.Errorf("nanogpt of cl100k_base tokens: %v", err)
	}
	if _, err := runSmelt(t, "export", toks, "--format", "parquet", "--out", mg); err == nil || !strings.Contains(err.Error(), "other inputs or options") {
		t.Errorf("another export into a finished one: %v", err)
	}

	pq := filepath.Join(dir, "pq")
	if out, err := runSmelt(t, "export", docs, "--format", "parquet", "--out", pq, "--row-group-mb", "0.05"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	js, err := runSmelt(t, "stats", "--json", docs)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Stats struct {
			Sources map[string]struct {
				Docs int64 `json:"docs"`
			} `json:"sources"`
		} `json:"stats"`
	}
	if err := json.Unmarshal([]byte(js), &st); err != nil || len(st.Stats.Sources) == 0 {
		t.Fatalf("stats --json: %v\n%s", err, js)
	}
	nodeDir, _ := filepath.Abs(filepath.Join("..", "..", "export", "testdata", "node"))
	node := testutil.NodePackages(t, nodeDir, "the DuckDB check", "@duckdb/node-api")
	res, err := exec.Command(node, filepath.Join(nodeDir, "readers.mjs"), "duckdb", filepath.Join(pq, "*.parquet")).Output()
	if err != nil {
		t.Fatalf("duckdb: %v", err)
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(res))
	for sc.Scan() {
		var r struct {
			Source string `json:"source"`
			Docs   int64  `json:"docs"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if want := st.Stats.Sources[r.Source].Docs; r.Docs != want {
			t.Errorf("source %s: DuckDB counts %d documents, smelt stats %d", r.Source, r.Docs, want)
		}
		n++
	}
	if n != len(st.Stats.Sources) {
		t.Errorf("DuckDB sees %d sources, smelt stats %d", n, len(st.Stats.Sources))
	}
	if _, err := os.Stat(filepath.Join(pq, "export.json")); err != nil {
		t.Error(err)
	}
}
