package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunStatusExplain drives smelt run, smelt status and smelt explain
// on a small generated recipe: JSONL crawl, Gopher rules, exact dedup,
// GPT-2 token shards.
func TestRunStatusExplain(t *testing.T) {
	dir := t.TempDir()
	crawl := filepath.Join(dir, "crawl")
	if err := os.MkdirAll(crawl, 0o755); err != nil {
		t.Fatal(err)
	}
	words := strings.Fields("the river ran past the old mill and the children of the village watched the water turn the wheel while their parents worked in the fields until evening came")
	for f := 0; f < 2; f++ {
		var b strings.Builder
		for i := 0; i < 30; i++ {
			var text strings.Builder
			for s := 0; s < 12; s++ {
				for k := 0; k < 12; k++ {
					text.WriteString(words[((i%25)*7+s*5+k*3+f)%len(words)] + " ")
				}
				text.WriteString("end.\n")
			}
			line, _ := json.Marshal(map[string]string{"id": fmt.Sprintf("d%d-%d", f, i), "text": text.String()})
			b.Write(line)
			b.WriteByte('\n')
		}
		if err := os.WriteFile(filepath.Join(crawl, fmt.Sprintf("%d.jsonl", f)), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	recipe := filepath.Join(dir, "r.yaml")
	if err := os.WriteFile(recipe, []byte(`name: cli
sources:
  - name: crawl
    inputs: [crawl]
    format: jsonl
    weight: 1
    tasks: 2
    filter: {rules: [gopher_quality]}
dedup: {exact: true, minhash: false}
tokenizer: {name: gpt2}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(dir, "run")
	out, err := runSmelt(t, "run", recipe, "--run-dir", runDir, "--workers", "2")
	if err != nil {
		t.Fatalf("smelt run: %v\n%s", err, out)
	}
	for _, want := range []string{"step ingest-crawl", "step dedup", "smelt run: done", "MERGED"} {
		if !strings.Contains(out, want) {
			t.Errorf("smelt run output lacks %q:\n%s", want, out)
		}
	}
	out, err = runSmelt(t, "status", runDir, "--all")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "ingest-crawl/1: done") || !strings.Contains(out, "tokenize/0: done") {
		t.Errorf("status:\n%s", out)
	}
	// smelt stats on the run directory shows every step, and where to look
	// next.
	if out, err = runSmelt(t, "stats", runDir); err != nil || !strings.Contains(out, "ingest-crawl") || !strings.Contains(out, "dedup: 60 in") ||
		!strings.Contains(out, "smelt stats "+filepath.Join(runDir, "STEP")) {
		t.Errorf("smelt stats on a run directory: %v\n%s", err, out)
	}
	if out, err = runSmelt(t, "stats", runDir, "--json"); err != nil || !strings.Contains(out, `"steps"`) || !strings.Contains(out, `"stage": "dedup"`) {
		t.Errorf("smelt stats --json on a run directory: %v\n%.500s", err, out)
	}
	// smelt stats reads a step directory like any stage output.
	if out, err = runSmelt(t, "stats", filepath.Join(runDir, "dedup")); err != nil || !strings.Contains(out, "dedup:exact") {
		t.Errorf("smelt stats on a step directory: %v\n%s", err, out)
	}
	// A changed recipe is refused without --force.
	if err := os.WriteFile(recipe, []byte(strings.Replace(mustRead(t, recipe), "minhash: false", "minhash: true", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err = runSmelt(t, "run", recipe, "--run-dir", runDir); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("changed recipe: %v\n%s", err, out)
	}
	if out, err = runSmelt(t, "run", recipe, "--run-dir", runDir, "--force"); err != nil {
		t.Fatalf("--force: %v\n%s", err, out)
	}
	if !strings.Contains(out, "step ingest-crawl     2 tasks, all done before") {
		t.Errorf("--force redid unchanged steps:\n%s", out)
	}
	out, err = runSmelt(t, "explain")
	if err != nil || !strings.Contains(out, "dedup") || !strings.Contains(out, "fineweb") {
		t.Errorf("explain: %v\n%s", err, out)
	}
	if out, err = runSmelt(t, "explain", "filter"); err != nil || !strings.Contains(out, "gopher_quality:") {
		t.Errorf("explain filter: %v\n%s", err, out)
	}
	if out, err = runSmelt(t, "explain", "gpt3"); err != nil || !strings.Contains(out, "pareto:9") {
		t.Errorf("explain gpt3: %v\n%s", err, out)
	}
	if _, err = runSmelt(t, "explain", "nope"); err == nil {
		t.Error("explain of an unknown stage succeeded")
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
