package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
)

// TestDecontamPIIRun is the user's path: index WikiText-2's test split
// with smelt decontam index, run a recipe whose filter has the decontam and
// pii rules over real Common Crawl JSONL documents (some with a benchmark
// passage or PII added), and find the results in smelt report and smelt
// inspect.
func TestDecontamPIIRun(t *testing.T) {
	wiki := testutil.SharedData(t, "clean_text/wikitext-2_test.txt")
	dir := t.TempDir()
	var paras []string
	var lines []int
	for i, l := range strings.Split(mustRead(t, wiki), "\n") {
		if f := strings.Fields(l); len(f) > 60 && !strings.HasPrefix(l, " =") && !strings.Contains(l, "@") {
			paras = append(paras, strings.Join(f[10:40], " "))
			lines = append(lines, i+1)
		}
	}
	var records []string // the eval records injected
	crawl := filepath.Join(dir, "crawl")
	os.MkdirAll(crawl, 0o755)
	var out strings.Builder
	contaminated, redacted := map[string]bool{}, map[string]bool{}
	n := 0
	for _, rel := range []string{"jsonl/dolma_cc_en_head-0091.jsonl", "jsonl/dolma_cc_en_head-0174.jsonl"} {
		f, err := os.Open(testutil.SharedData(t, rel))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var d map[string]any
			if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
				t.Fatal(err)
			}
			text := d["text"].(string)
			id := fmt.Sprintf("cc-%02d", n)
			switch n % 4 {
			case 0:
				text = text[:len(text)/2] + "\n" + paras[n*7] + "\n" + text[len(text)/2:]
				contaminated[id] = true
				records = append(records, fmt.Sprintf("<code>L%d</code>", lines[n*7]))
			case 1:
				text += "\nQuestions? Write to jane.doe@example.com or call +44 20 7946 0958."
				redacted[id] = true
			}
			line, _ := json.Marshal(map[string]string{"id": id, "text": text})
			out.Write(line)
			out.WriteByte('\n')
			n++
		}
		f.Close()
	}
	if err := os.WriteFile(filepath.Join(crawl, "cc.jsonl"), []byte(out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	msg, err := runSmelt(t, "decontam", "index", "wikitext2_test="+wiki, "--out", filepath.Join(dir, "evals.dcx"))
	if err != nil || !strings.Contains(msg, "wikitext2_test") || !strings.Contains(msg, "n-grams (n=13)") {
		t.Fatalf("decontam index: %v\n%s", err, msg)
	}
	recipe := filepath.Join(dir, "r.yaml")
	os.WriteFile(recipe, []byte(`name: decontam
sources:
  - name: crawl
    inputs: [crawl]
    format: jsonl
    weight: 1
    filter:
      rules: [decontam, pii]
      decontam: {index: evals.dcx, policy: drop}
tokenizer: {name: gpt2}
`), 0o644)
	runDir := filepath.Join(dir, "run")
	if msg, err := runSmelt(t, "run", recipe, "--run-dir", runDir, "--workers", "2"); err != nil {
		t.Fatalf("smelt run: %v\n%s", err, msg)
	}
	st, err := shards.ReadStats(filepath.Join(runDir, "filter-crawl"))
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Dropped["decontam/ngram"].Docs; got != int64(len(contaminated)) {
		t.Errorf("decontam dropped %d documents, want %d: %v", got, len(contaminated), st.Dropped)
	}
	if m := st.Metrics["pii/email"]; m == nil || m.N < int64(len(redacted)) {
		t.Errorf("pii/email metric %+v, want >= %d documents", m, len(redacted))
	}
	if m := st.Metrics["decontam/ngrams/wikitext2_test"]; m == nil || m.N != int64(len(contaminated)) {
		t.Errorf("decontam metric %+v", m)
	}

	// smelt report shows the eval sets, the contaminated records and PII.
	html := filepath.Join(dir, "report.html")
	if msg, err := runSmelt(t, "report", runDir, "--out", html); err != nil {
		t.Fatalf("report: %v\n%s", err, msg)
	}
	page := mustRead(t, html)
	for _, want := range []string{`id="decontam"`, "wikitext2_test", "Contaminated eval records (", "<td>email</td>", "<td>phone</td>"} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, r := range records {
		if !strings.Contains(page, r) {
			t.Errorf("report does not list the contaminated record %s", r)
		}
	}
	if strings.Contains(page, "decontam/record/") {
		t.Error("report lists one metric row per contaminated record")
	}

	// smelt inspect: a dropped document shows its eval record, a redacted
	// one the kinds replaced and where.
	base, stop := startInspect(t, runDir)
	get := func(path string) string {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %s", path, resp.Status)
		}
		return string(b)
	}
	doc := get("doc?step=filter-crawl&set=dropped&row=0")
	for _, want := range []string{"decontam/ngram", "Benchmark overlap", "<td>wikitext2_test</td>", `<mark class="match" title="eval wikitext2_test#L`} {
		if !strings.Contains(doc, want) {
			t.Errorf("dropped document page lacks %q", want)
		}
	}
	found := false
	for row := 0; row < n-len(contaminated) && !found; row++ {
		doc := get(fmt.Sprintf("doc?step=filter-crawl&set=kept&row=%d", row))
		if strings.Contains(doc, `id="pii-summary"`) && strings.Contains(doc, `<mark class="pii" title="pii: email">&lt;EMAIL&gt;`) &&
			strings.Contains(doc, `title="pii: phone"`) {
			found = true
		}
	}
	if !found {
		t.Error("no kept document page shows its PII replacements")
	}
	if err := stop(); err != nil {
		t.Error(err)
	}
}
