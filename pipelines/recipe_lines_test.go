package pipelines

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// withSource adds lines to minimal's source.
func withSource(extra string) string {
	return strings.Replace(minimal, "    weight: 1\n", "    weight: 1\n"+extra, 1)
}

// recipeLineCases are recipes whose errors must name a line (and hold
// want, and not hold not); FuzzParseRecipe starts from them too.
var recipeLineCases = []struct {
	name, yaml string
	want       []string
	not        string
}{
	{"bad weight", strings.Replace(minimal, "weight: 1", "weight: 0", 1), []string{"line 5:", "weight 0 must be a positive number"}, ""},
	{"negative weight", strings.Replace(minimal, "weight: 1", "weight: -2", 1), []string{"line 5:", "weight -2"}, ""},
	{"duplicate source", strings.Replace(minimal, "tokenizer:", "  - name: web\n    inputs: [x]\n    weight: 1\ntokenizer:", 1), []string{"line 6:", `source "web" listed twice`, "line 3"}, ""},
	{"duplicate source through an alias", strings.Replace(minimal, "  - name: web\n    inputs: [crawl]\n    weight: 1\n", "  - &web\n    name: web\n    inputs: [crawl]\n    weight: 1\n  - *web\n", 1), []string{"line 7:", `source "web" listed twice (first at line 4)`}, ""},
	{"unknown rule", withSource("    filter: {rules: [gopher_quality, nope]}\n"), []string{"line 6:", `unknown rule "nope"`}, ""},
	{"unknown rule, block list", withSource("    filter:\n      rules:\n        - gopher_quality\n        - nope\n"), []string{"line 9:", `unknown rule "nope"`}, ""},
	{"bad format", withSource("    format: pdf\n"), []string{"line 6:", `format "pdf"`}, ""},
	{"no inputs", strings.Replace(minimal, "inputs: [crawl]", "inputs: []", 1), []string{"line 4:", "no inputs"}, ""},
	{"bad source name", strings.Replace(minimal, "name: web", "name: Web", 1), []string{"line 3:", `name "Web"`}, ""},
	{"bad run name", strings.Replace(minimal, "name: t\n", "name: T\n", 1), []string{"line 1:", `name "T"`}, ""},
	{"reference with weight", withSource("    reference: true\n"), []string{"line 5:", "reference source is not mixed"}, ""},
	{"unknown tokenizer", strings.Replace(minimal, "name: gpt2", "name: gpt7", 1), []string{"line 7:", `unknown tokenizer "gpt7"`, "gpt2", "cl100k_base"}, "no such file"},
	{"tokenizer vocab", strings.Replace(minimal, "  name: gpt2\n", "  train: {vocab_size: 3}\n", 1), []string{"line 7:", "vocab_size 3"}, ""},
	{"tokenizer vocab overflow", strings.Replace(minimal, "  name: gpt2\n", "  train: {vocab_size: 99999999999999}\n", 1), []string{"line 7:", "vocab_size 99999999999999"}, ""},
	{"tokenizer sample_mb overflow", strings.Replace(minimal, "  name: gpt2\n", "  train: {vocab_size: 1000, sample_mb: 99999999999999}\n", 1), []string{"line 7:", "sample_mb 99999999999999"}, ""},
	{"tokenizer sample_mb negative", strings.Replace(minimal, "  name: gpt2\n", "  train: {vocab_size: 1000, sample_mb: -1}\n", 1), []string{"line 7:", "sample_mb -1"}, ""},
	{"classifier unknown source", minimal + "classifier:\n  positives: [web]\n  negatives: [ref]\n  apply_to: [web]\n", []string{"line 10:", `no source "ref"`}, ""},
	{"classifier bad keep", minimal + "classifier: {positives: [web], negatives: [web], apply_to: [web], keep: 'pareto:-1'}\n", []string{"line 8:", "alpha must be positive"}, ""},
	{"classifier bits", minimal + "classifier:\n  positives: [web]\n  negatives: [web]\n  apply_to: [web]\n  bits: 64\n", []string{"line 12:", "bits 64"}, ""},
	{"classifier sample_mb overflow", minimal + "classifier:\n  positives: [web]\n  negatives: [web]\n  apply_to: [web]\n  sample_mb: 99999999999999\n", []string{"line 12:", "sample_mb 99999999999999"}, ""},
	{"classifier chunk_bytes", minimal + "classifier:\n  positives: [web]\n  negatives: [web]\n  apply_to: [web]\n  chunk_bytes: -5\n", []string{"line 12:", "chunk_bytes -5"}, ""},
	{"shard_mb overflow", minimal + "shard_mb: 99999999999999\n", []string{"line 8:", "shard_mb 99999999999999", "at most"}, ""},
	{"shard_mb negative", minimal + "shard_mb: -1\n", []string{"line 8:", "shard_mb -1"}, ""},
	{"task_mb overflow", withSource("    task_mb: 99999999999999\n"), []string{"line 6:", "task_mb 99999999999999"}, ""},
	{"tasks negative", withSource("    tasks: -3\n"), []string{"line 6:", "tasks -3"}, ""},
	{"dedup", minimal + "dedup:\n  exact: true\n  scope: dataset\n", []string{"line 10:", `scope "dataset"`}, ""},
	{"train preset", minimal + "train:\n  config: tiny2\n", []string{"line 9:", `"tiny2"`, "tiny"}, "no such file"},
	{"train budget overflow", minimal + "train:\n  steps: 99999999999999\n  batch_size: 99999999\n", []string{"line 9:", "too many"}, ""},
	{"train val_fraction", minimal + "train:\n  steps: 3\n  val_fraction: 2\n", []string{"line 10:", "val_fraction 2"}, ""},
}

// TestRecipeErrorsNameTheLine: errors that yaml.v3 does not find (bad
// values, unknown rules, duplicate sources, unknown tokenizers, sizes that
// overflow) name the line of the setting at fault.
func TestRecipeErrorsNameTheLine(t *testing.T) {
	for _, tc := range recipeLineCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRecipe([]byte(tc.yaml), t.TempDir())
			if err == nil {
				t.Fatalf("no error for\n%s", tc.yaml)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tc.not != "" && strings.Contains(err.Error(), tc.not) {
				t.Errorf("error %q says %q", err, tc.not)
			}
		})
	}
}

// TestRecipeFileErrorsNameFileAndLine: smelt run's errors name the recipe
// file and line, also for an input that does not exist, which is only
// found when the run is planned.
func TestRecipeFileErrorsNameFileAndLine(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "crawl"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "crawl", "a.jsonl"), []byte(`{"text":"x"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "r.yaml")
	write := func(y string) {
		if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(strings.Replace(minimal, "weight: 1", "weight: 0", 1))
	if _, err := LoadRecipe(path); err == nil || !strings.Contains(err.Error(), path+": line 5:") {
		t.Errorf("bad weight: %v", err)
	}
	write(strings.Replace(minimal, "inputs: [crawl]", "inputs:\n      - crawl\n      - nothere/*.jsonl\n      - missing.warc.gz", 1))
	r, err := LoadRecipe(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewPlan(r)
	if err == nil || !strings.Contains(err.Error(), path+": line 6:") || !strings.Contains(err.Error(), "nothere") {
		t.Errorf("glob matching nothing: %v", err)
	}
	write(strings.Replace(minimal, "inputs: [crawl]", "inputs:\n      - crawl\n      - missing.warc.gz", 1))
	if r, err = LoadRecipe(path); err != nil {
		t.Fatal(err)
	}
	_, err = NewPlan(r)
	if err == nil || !strings.Contains(err.Error(), path+": line 6:") || !strings.Contains(err.Error(), "missing.warc.gz") {
		t.Errorf("missing input: %v", err)
	}
	// smelt run plans the recipe as it reads it back from the run
	// directory; the lines are still those of the user's file.
	_, err = Open(filepath.Join(dir, "run"), r, OpenOptions{})
	if err == nil || !strings.Contains(err.Error(), path+": line 6:") || !strings.Contains(err.Error(), "missing.warc.gz") {
		t.Errorf("missing input, smelt run: %v", err)
	}
}
