package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/lineage"
)

// TestLineageTakedownCLI runs a small recipe, asks where a page went,
// takes it down by URL and asks again.
func TestLineageTakedownCLI(t *testing.T) {
	dir := t.TempDir()
	crawl := filepath.Join(dir, "crawl")
	if err := os.MkdirAll(crawl, 0o755); err != nil {
		t.Fatal(err)
	}
	words := strings.Fields("the river ran past the old mill and the children of the village watched the water turn the wheel while their parents worked in the fields until evening came")
	var b strings.Builder
	for i := 0; i < 20; i++ {
		var text strings.Builder
		for s := 0; s < 10; s++ {
			for k := 0; k < 12; k++ {
				text.WriteString(words[(i*7+s*5+k*3)%len(words)] + " ")
			}
			text.WriteString("end.\n")
		}
		line, _ := json.Marshal(map[string]string{"id": fmt.Sprintf("d%d", i), "text": text.String(),
			"url": fmt.Sprintf("https://h%d.example.org/p/%d", i%3, i)})
		b.Write(line)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(crawl, "0.jsonl"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	recipe := filepath.Join(dir, "r.yaml")
	if err := os.WriteFile(recipe, []byte(`name: cli
sources:
  - name: crawl
    inputs: [crawl]
    format: jsonl
    weight: 1
dedup: {exact: true, minhash: false}
tokenizer: {name: gpt2}
export:
  - format: megatron
`), 0o644); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run")
	if out, err := runSmelt(t, "run", recipe, "--run-dir", run, "--workers", "2"); err != nil {
		t.Fatalf("smelt run: %v\n%s", err, out)
	}
	url := "https://h1.example.org/p/4"
	out, err := runSmelt(t, "lineage", run, "--url", url)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"crawl/d4  " + url, "status: kept (tokenized)", "ingest-crawl", "tokenize", "export-megatron", "megatron crawl.bin bytes "} {
		if !strings.Contains(out, want) {
			t.Fatalf("lineage output lacks %q:\n%s", want, out)
		}
	}
	out, err = runSmelt(t, "lineage", run, "--domain", "example.org", "--json", "--limit", "0")
	if err != nil {
		t.Fatal(err)
	}
	var ls []map[string]any
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "]")+1]), &ls); err != nil || len(ls) != 20 {
		t.Fatalf("--json: %d documents, %v\n%s", len(ls), err, out)
	}
	// Printed one document at a time, the list reads exactly as
	// json.Encoder writes the whole of it.
	ix, err := lineage.Open(context.Background(), run)
	if err != nil {
		t.Fatal(err)
	}
	all, err := ix.Lookup(lineage.Query{Domain: "example.org"}, 0)
	ix.Close()
	if err != nil {
		t.Fatal(err)
	}
	var whole strings.Builder
	enc := json.NewEncoder(&whole)
	enc.SetIndent("", "  ")
	if err := enc.Encode(all); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, whole.String()) {
		t.Fatalf("--json printed\n%.400s\nwant\n%.400s", out, whole.String())
	}
	if _, err := runSmelt(t, "lineage", run); err == nil {
		t.Fatal("lineage without a query succeeded")
	}
	req := filepath.Join(dir, "urls.txt")
	if err := os.WriteFile(req, []byte("# removal requests\n"+url+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runSmelt(t, "takedown", run, "--urls", req)
	if err != nil || !strings.Contains(out, "took down 1 document(s)") {
		t.Fatalf("takedown: %v\n%s", err, out)
	}
	out, err = runSmelt(t, "lineage", run, "--url", url)
	if err != nil || !strings.Contains(out, "status: taken down") {
		t.Fatalf("lineage after takedown: %v\n%s", err, out)
	}
	out, err = runSmelt(t, "takedown", run, "--urls", req)
	if err != nil || !strings.Contains(out, "took down 0 document(s)") {
		t.Fatalf("second takedown: %v\n%s", err, out)
	}
}
