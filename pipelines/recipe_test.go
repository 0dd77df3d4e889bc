package pipelines

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/filter"
)

const minimal = `name: t
sources:
  - name: web
    inputs: [crawl]
    weight: 1
tokenizer:
  name: gpt2
`

// recipeErrorCases are recipes that ParseRecipe refuses, with a part of
// the error; FuzzParseRecipe starts from them too.
var recipeErrorCases = []struct {
	name, yaml, want string
}{
	{"unknown top key", minimal + "bogus: 1\n", `line 8: unknown key "bogus"`},
	{"unknown source key", strings.Replace(minimal, "    weight: 1\n", "    weight: 1\n    wieght: 2\n", 1), `line 6: unknown key "wieght"`},
	{"unknown filter key", strings.Replace(minimal, "    weight: 1\n", "    weight: 1\n    filter:\n      gopher_quality:\n        min_wrds: 3\n", 1), `line 8: unknown key "min_wrds"`},
	{"unknown dedup key", minimal + "dedup:\n  minhash: true\n  bandz: 3\n", `line 10: unknown key "bandz"`},
	{"wrong type", strings.Replace(minimal, "weight: 1", "weight: lots", 1), "line 5"},
	{"wrong type in filter", strings.Replace(minimal, "    weight: 1\n", "    weight: 1\n    filter:\n      rules: gopher\n", 1), "line 7"},
	{"no name", strings.Replace(minimal, "name: t\n", "", 1), "name is required"},
	{"no sources", "name: t\ntokenizer: {name: gpt2}\n", "no sources"},
	{"bad weight", strings.Replace(minimal, "weight: 1", "weight: 0", 1), "weight 0 must be a positive number"},
	{"duplicate source", strings.Replace(minimal, "tokenizer:", "  - name: web\n    inputs: [x]\n    weight: 1\ntokenizer:", 1), "listed twice"},
	{"unknown rule", strings.Replace(minimal, "    weight: 1\n", "    weight: 1\n    filter: {rules: [nope]}\n", 1), `unknown rule "nope"`},
	{"no tokenizer", strings.Replace(minimal, "tokenizer:\n  name: gpt2\n", "", 1), "tokenizer is required"},
	{"classifier unknown source", minimal + "classifier: {positives: [ref], negatives: [web], apply_to: [web]}\n", `no source "ref"`},
	{"bad keep", minimal + "classifier: {positives: [web], negatives: [web], apply_to: [web], keep: 'pareto:-1'}\n", "alpha must be positive"},
	{"reference with weight", strings.Replace(minimal, "    weight: 1\n", "    weight: 1\n    reference: true\n", 1), "reference source is not mixed"},
	{"two documents", minimal + "---\nname: u\n", "a second YAML document"},
	{"dedup scope", minimal + "dedup: {scope: dataset}\n", `scope "dataset"`},
	{"source name escaping the run directory", strings.Replace(minimal, "name: web", "name: ../web", 1), `name "../web"`},
	{"bad format", strings.Replace(minimal, "    weight: 1\n", "    weight: 1\n    format: pdf\n", 1), `format "pdf"`},
	{"bad token compression", minimal + "token_compression: lz4\n", `line 8: token_compression: token compression "lz4": want none or zstd`},
}

func TestParseRecipeErrors(t *testing.T) {
	for _, tc := range recipeErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRecipe([]byte(tc.yaml), "/base")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestParseRecipeDefaults(t *testing.T) {
	y := strings.Replace(minimal, "    weight: 1\n", "    weight: 1\n    filter:\n      rules: [gopher_quality]\n      gopher_quality:\n        min_words: 10\n", 1) +
		"dedup:\n  threshold: 0.7\n  bands: 0\n  rows: 0\n"
	r, err := ParseRecipe([]byte(y), "/base")
	if err != nil {
		t.Fatal(err)
	}
	s := r.Sources[0]
	if s.Inputs[0] != "/base/crawl" {
		t.Errorf("input %q not resolved against the recipe's directory", s.Inputs[0])
	}
	def := filter.DefaultConfig()
	if s.Filter.GopherQuality.MinWords != 10 || s.Filter.GopherQuality.MaxWords != def.GopherQuality.MaxWords {
		t.Errorf("filter not decoded over the defaults: %+v", s.Filter.GopherQuality)
	}
	if s.Filter.C4 == nil || s.Filter.C4.MinSentences != def.C4.MinSentences {
		t.Error("unset filter sections lost their defaults")
	}
	if d := r.Dedup; !d.Exact || !d.MinHash || d.Perms != 112 || d.Threshold != 0.7 || d.Bands == 0 {
		t.Errorf("dedup not decoded over the defaults: %+v", d.Options)
	}
	if d := r.Dedup; d.Scope != "source" || d.Global() {
		t.Errorf("dedup scope %q, want source by default", d.Scope)
	}
	if r.ShardMB != 64 || s.TaskMB != 512 || s.Format != "auto" {
		t.Errorf("defaults: shard_mb %d task_mb %d format %q", r.ShardMB, s.TaskMB, s.Format)
	}
	// The resolved recipe parses back to itself.
	y2, err := r.YAML()
	if err != nil {
		t.Fatal(err)
	}
	r2, err := ParseRecipe(y2, "/elsewhere")
	if err != nil {
		t.Fatalf("resolved recipe does not parse: %v\n%s", err, y2)
	}
	h1, _ := r.Hash()
	h2, _ := r2.Hash()
	if h1 != h2 {
		t.Errorf("resolved recipe changes when parsed again:\n%s", y2)
	}
}

func TestBundledRecipes(t *testing.T) {
	names := BundledNames()
	if strings.Join(names, ",") != "demo,fineweb,gpt3" {
		t.Fatalf("bundled: %v", names)
	}
	for _, n := range names {
		data, _ := Bundled(n)
		r, err := ParseRecipe(data, "/base")
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if r.Name != n {
			t.Errorf("%s.yaml is named %q", n, r.Name)
		}
	}
	data, _ := Bundled("gpt3")
	r, _ := ParseRecipe(data, "/base")
	if r.Classifier.Keep != "pareto:9" || len(r.Sources) != 5 || r.Sources[0].Weight != 0.6 {
		t.Errorf("gpt3 recipe: keep %s, %d sources", r.Classifier.Keep, len(r.Sources))
	}
	data, _ = Bundled("fineweb")
	r, _ = ParseRecipe(data, "/base")
	if d := r.Dedup; d.NGram != 5 || d.Bands != 14 || d.Rows != 8 || d.Exact || d.Scope != "source" {
		t.Errorf("fineweb dedup: %+v", d.Options)
	}
	for _, n := range []string{"fineweb", "gpt3"} {
		if data, _ := Bundled(n); !strings.Contains(string(data), "scope: global") {
			t.Errorf("%s.yaml does not mention scope: global", n)
		}
	}
	// The bundled file on disk is the embedded one.
	disk, err := os.ReadFile(filepath.Join("demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if emb, _ := Bundled("demo"); string(emb) != string(disk) {
		t.Error("embedded demo.yaml differs from the file")
	}
}

func TestSplitFiles(t *testing.T) {
	files := make([]InputFile, 10)
	for i := range files {
		files[i] = InputFile{Path: string(rune('a' + i)), Bytes: int64(10 * (i + 1))}
	}
	for _, tasks := range []int{1, 3, 4, 10, 20} {
		groups := splitFiles(files, tasks, 0)
		if want := min(tasks, 10); len(groups) != want {
			t.Errorf("%d tasks: %d groups", tasks, len(groups))
		}
		n := 0
		for _, g := range groups {
			if len(g) == 0 {
				t.Errorf("%d tasks: an empty group", tasks)
			}
			for _, f := range g {
				if f.Path != files[n].Path {
					t.Errorf("%d tasks: file order broken", tasks)
				}
				n++
			}
		}
		if n != 10 {
			t.Errorf("%d tasks: %d files in groups", tasks, n)
		}
	}
	if g := splitFiles(files, 0, 200); len(g) != 3 { // 550 bytes in groups of ~200
		t.Errorf("by bytes: %d groups, want 3", len(g))
	}
}

func TestGomodInput(t *testing.T) {
	p, err := resolveGomod("gomod:gopkg.in/yaml.v3/LICENSE")
	if err != nil {
		t.Skipf("module cache not reachable: %v", err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Errorf("resolved %s: %v", p, err)
	}
	if _, err := resolveGomod("gomod:example.com/not/a/dependency/x"); err == nil {
		t.Error("a module smelt does not use resolved")
	}
}

// TestPlanStableAcrossReload checks that a task process, which reads the
// run directory's recipe.yaml, computes the same plan as smelt run did
// from the user's file.
func TestPlanStableAcrossReload(t *testing.T) {
	dir := t.TempDir()
	recipe := setupRun(t, dir, true)
	r, err := LoadRecipe(recipe)
	if err != nil {
		t.Fatal(err)
	}
	run, err := Open(filepath.Join(dir, "run"), r, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := OpenExisting(run.Dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(again.Recipe)
	if err != nil {
		t.Fatal(err)
	}
	if hashJSON(p) != hashJSON(run.Plan) {
		t.Error("the plan from recipe.yaml differs from the plan smelt run made")
	}
}

// TestPlanDedupScope checks the dedup steps of both scopes: a group per
// source, or one group over every mixed source (in recipe order); the
// sketch and route steps have a task per upstream task, the bucket step
// dedup.steps.bucket.tasks per group, and each source's tokenize task
// reads only its own route tasks.
func TestPlanDedupScope(t *testing.T) {
	dir := t.TempDir()
	setupRun(t, dir, false)
	for _, scope := range []string{"source", "global"} {
		y := strings.Replace(testRecipe(false), "dedup:\n", "dedup:\n  scope: "+scope+"\n  store: stores\n  verify: survivor\n  steps: {bucket: {tasks: 3, cpus: 2, mem: 1GiB}}\n", 1)
		r, err := ParseRecipe([]byte(y), dir)
		if err != nil {
			t.Fatal(err)
		}
		p, err := NewPlan(r)
		if err != nil {
			t.Fatal(err)
		}
		if r.Dedup.RunOptions().Verify != "survivor" {
			t.Errorf("verify: survivor not read: %+v", r.Dedup.Options)
		}
		sk, bk, cl, dd := p.Step("dedup-sketch"), p.Step("dedup-bucket"), p.Step("dedup-cluster"), p.Step("dedup")
		tk, ts := p.Step("tokenizer"), p.Step("tokenize")
		if len(ts.Tasks) != 2 || ts.Tasks[0].Source != "crawl" || ts.Tasks[1].Source != "books" {
			t.Fatalf("%s: tokenize tasks %+v", scope, ts.Tasks)
		}
		groups := 2
		if scope == "global" {
			groups = 1
		}
		// crawl: 3 filter tasks, then books' 1 ingest task.
		want := []string{"filter-crawl/tasks/00000", "filter-crawl/tasks/00001", "filter-crawl/tasks/00002", "ingest-books/tasks/00000"}
		if len(sk.Tasks) != 4 || len(dd.Tasks) != 4 || len(cl.Tasks) != groups || len(bk.Tasks) != 3*groups ||
			bk.CPUs != 2 || bk.MemBytes != 1<<30 || strings.Join(sk.Needs, ",") != "filter-crawl,ingest-books" {
			t.Fatalf("%s: %d sketch, %d bucket (cpus %d, mem %d), %d cluster, %d route tasks", scope, len(sk.Tasks), len(bk.Tasks), bk.CPUs, bk.MemBytes, len(cl.Tasks), len(dd.Tasks))
		}
		for i, tt := range dd.Tasks {
			if tt.Inputs[0] != want[i] || sk.Tasks[i].Inputs[0] != want[i] {
				t.Errorf("%s: route task %d reads %v", scope, i, tt.Inputs)
			}
		}
		if strings.Join(ts.Tasks[1].Inputs, ",") != dd.Tasks[3].Out || len(ts.Tasks[0].Inputs) != 3 || len(tk.Tasks[0].Inputs) != 0 && len(tk.Tasks[0].Inputs) != 4 {
			t.Errorf("%s: tokenize reads %v and %v", scope, ts.Tasks[0].Inputs, ts.Tasks[1].Inputs)
		}
		if scope == "source" {
			if r.Dedup.StorePath("books") != filepath.Join(dir, "stores", "books") || cl.Tasks[1].Group != "books" {
				t.Fatalf("source scope: cluster tasks %+v", cl.Tasks)
			}
			continue
		}
		if r.Dedup.StorePath("") != filepath.Join(dir, "stores", GlobalStoreName) {
			t.Errorf("global store %q", r.Dedup.StorePath(""))
		}
		if ts.Tasks[0].Fingerprint == ts.Tasks[1].Fingerprint {
			t.Error("the tokenize tasks of two sources share a fingerprint")
		}
	}
	if _, err := ParseRecipe([]byte(strings.Replace(testRecipe(false), "dedup:\n", "dedup:\n  steps: {bucket: {mem: lots}}\n", 1)), dir); err == nil || !strings.Contains(err.Error(), "dedup.steps.bucket.mem") {
		t.Errorf("a bad mem: %v", err)
	}
}

func TestExpandSourceLiteralNames(t *testing.T) {
	dir := t.TempDir()
	odd := filepath.Join(dir, "a [b] *c? \\d.txt")
	if err := os.WriteFile(odd, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := ExpandSource(&Source{Name: "s", Inputs: []string{odd}})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Path != odd {
		t.Errorf("got %+v", files)
	}
}
