package lineage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/smelt-dev/smelt/pipelines"
	"github.com/smelt-dev/smelt/shards"
)

var words = strings.Fields(`the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were her she there one all we their has been if more when will would who so no out up into do than its only other new some could time these two may then first any now my such like our over man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know river morning garden letter window mountain evening children harbour quiet lantern meadow journey careful bright silver autumn winter gentle patient orchard village ancient promise`)

func para(rng *rand.Rand) string {
	var b strings.Builder
	for s := 0; s < 4+rng.IntN(4); s++ {
		n := 8 + rng.IntN(10)
		w := make([]string, n)
		for i := range w {
			w[i] = words[rng.IntN(len(words))]
		}
		t := strings.Join(w, " ")
		b.WriteString(strings.ToUpper(t[:1]) + t[1:] + ". ")
	}
	return strings.TrimSpace(b.String())
}

// writeCrawl writes JSONL crawl files under dir/crawl: prose pages on 12
// hosts, exact duplicates of earlier pages at other URLs, and short pages
// the filter drops.
func writeCrawl(t testing.TB, dir string, files, perFile int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 3))
	crawl := filepath.Join(dir, "crawl")
	if err := os.MkdirAll(crawl, 0o755); err != nil {
		t.Fatal(err)
	}
	var earlier []string
	for f := 0; f < files; f++ {
		var b bytes.Buffer
		for i := 0; i < perFile; i++ {
			var text string
			switch k := rng.IntN(10); {
			case k == 0 && len(earlier) > 0:
				text = earlier[rng.IntN(len(earlier))]
			case k == 1:
				text = "Buy now. Click here."
			default:
				var ps []string
				for p := 0; p < 2+rng.IntN(3); p++ {
					ps = append(ps, para(rng))
				}
				text = strings.Join(ps, "\n\n")
				earlier = append(earlier, text)
			}
			host := fmt.Sprintf("site%d.example", rng.IntN(12))
			if rng.IntN(4) == 0 {
				host = "www." + host
			}
			line, _ := json.Marshal(map[string]string{"id": fmt.Sprintf("s%d-f%d-%d", seed, f, i), "text": text,
				"url": fmt.Sprintf("https://%s/page/%d/%d", host, f, i)})
			b.Write(line)
			b.WriteByte('\n')
		}
		if err := os.WriteFile(filepath.Join(crawl, fmt.Sprintf("part-%02d.jsonl", f)), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const testRecipe = `name: lin
shard_mb: 1
sources:
  - name: crawl
    inputs: [crawl/*.jsonl]
    format: jsonl
    weight: 1
    tasks: 2
    filter:
      rules: [gopher_quality]
dedup:
  exact: true
  minhash: true
  store: store
tokenizer:
  train:
    vocab_size: 300
export:
  - format: megatron
  - format: nanogpt
    val_fraction: 0.1
  - format: llmc
    val_fraction: 0.1
  - format: jsonl
  - format: parquet
  - format: parquet
    of: tokens
`

// runPipeline runs the recipe in dir (corpus already written) into dir/run.
func runPipeline(t testing.TB, dir, recipe string) string {
	t.Helper()
	path := filepath.Join(dir, "recipe.yaml")
	if err := os.WriteFile(path, []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := pipelines.LoadRecipe(path)
	if err != nil {
		t.Fatal(err)
	}
	run, err := pipelines.Open(filepath.Join(dir, "run"), r, pipelines.OpenOptions{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.RunLocal(context.Background(), pipelines.LocalOptions{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	return run.Dir
}

var (
	baseOnce sync.Once
	baseDir  string
	baseErr  error
)

// freshRun returns a copy of one small finished run (built once per test
// binary): dir holds crawl/, store/ and run/. Copies keep the run's files
// byte for byte; export.json's input paths still name the original, which
// lineage resolves to the copy's own task directories.
func freshRun(t *testing.T) (dir, run string) {
	t.Helper()
	baseOnce.Do(func() {
		baseDir, baseErr = os.MkdirTemp("", "lineage-base-")
		if baseErr != nil {
			return
		}
		baseErr = fmt.Errorf("building the base run failed")
		writeCrawl(t, baseDir, 3, 60, 1)
		runPipeline(t, baseDir, testRecipe)
		baseErr = nil
	})
	if baseErr != nil {
		t.Fatal(baseErr)
	}
	dir = t.TempDir()
	if err := copyTree(baseDir, dir); err != nil {
		t.Fatal(err)
	}
	// The recorded recipe holds resolved paths: the copy's own store and
	// inputs.
	rp := filepath.Join(dir, "run", pipelines.RecipeFile)
	data, err := os.ReadFile(rp)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rp, bytes.ReplaceAll(data, []byte(baseDir), []byte(dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, filepath.Join(dir, "run")
}

func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "hold-lock" {
		// Hold the run's lock until killed, printing a line once held.
		if _, err := shards.LockDir(filepath.Join(os.Args[2], pipelines.StateDir), "lock"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("held")
		select {}
	}
	if len(os.Args) > 2 && os.Args[1] == "takedown-child" {
		os.Exit(childTakedown(os.Args[2:]))
	}
	code := m.Run()
	if baseDir != "" {
		os.RemoveAll(baseDir)
	}
	os.Exit(code)
}

func copyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// treeFiles returns every regular file under dir/sub (relative to dir)
// with its content, state directory left out.
func treeFiles(t *testing.T, dir string, subs ...string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, sub := range subs {
		root := filepath.Join(dir, sub)
		err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			if info.IsDir() {
				if info.Name() == pipelines.StateDir {
					return filepath.SkipDir
				}
				return nil
			}
			rel, _ := filepath.Rel(dir, p)
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = data
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func sameFiles(t *testing.T, what string, want, got map[string][]byte) {
	t.Helper()
	var names []string
	for k := range want {
		names = append(names, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	bad := 0
	for _, k := range names {
		w, okw := want[k]
		g, okg := got[k]
		switch {
		case !okw:
			t.Errorf("%s: %s only after", what, k)
		case !okg:
			t.Errorf("%s: %s missing", what, k)
		case !bytes.Equal(w, g):
			t.Errorf("%s: %s differs (%d vs %d bytes)", what, k, len(w), len(g))
		default:
			continue
		}
		if bad++; bad > 10 {
			t.Fatalf("%s: more differences", what)
		}
	}
}
