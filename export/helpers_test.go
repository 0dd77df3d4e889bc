package export

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/smelt-dev/smelt/ingest"
	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/tokenize"
)

var tmpRoot string

func TestMain(m *testing.M) {
	if os.Getenv("SMELT_EXPORT_CHILD") != "" {
		// A child of TestResumeAfterKill9, killed with SIGKILL: it
		// needs no fixture directory, and would leave it behind.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "smelt-export-test-")
	if err != nil {
		panic(err)
	}
	tmpRoot = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// corpus is test input made by smelt's own stages from real pages: per
// source, a document-shard directory (ingest) and a token-shard
// directory (tokenize, GPT-2), each cut into several small shards.
type corpus struct {
	sources []string
	docs    map[string]string
	tokens  map[string]string
}

var (
	fixtureOnce sync.Once
	fixture     *corpus
	fixtureErr  error
	fixtureSkip string
)

// realCorpus returns the shared test corpus: "web", 120 of the real pages
// shipped in go-trafilatura, and, when ../shared/data is present, "cc",
// the real Common Crawl JSONL documents there.
func realCorpus(t testing.TB) *corpus {
	t.Helper()
	fixtureOnce.Do(func() {
		pages := findPages(120)
		if pages == nil {
			fixtureSkip = "go-trafilatura's test pages are not in the module cache"
			return
		}
		inputs := map[string][]string{"web": pages}
		srcs := []string{"web"}
		if shared := sharedJSONL(); shared != nil {
			inputs["cc"] = shared
			srcs = append(srcs, "cc")
		}
		c := &corpus{sources: srcs, docs: map[string]string{}, tokens: map[string]string{}}
		tok, err := tokenize.GetOrLoad("gpt2")
		if err != nil {
			fixtureErr = err
			return
		}
		for _, s := range srcs {
			d, k := filepath.Join(tmpRoot, "docs", s), filepath.Join(tmpRoot, "tokens", s)
			if _, err := ingest.Run(context.Background(), inputs[s], d, ingest.Options{Source: s, Workers: 2, TargetBytes: 48 << 10}); err != nil {
				fixtureErr = fmt.Errorf("ingest %s: %w", s, err)
				return
			}
			if _, err := shards.Tokenize(context.Background(), shards.TokenizeConfig{Inputs: []string{d}, Out: k, Encoder: tok, Workers: 2, TargetBytes: 40 << 10}); err != nil {
				fixtureErr = fmt.Errorf("tokenize %s: %w", s, err)
				return
			}
			c.docs[s], c.tokens[s] = d, k
		}
		fixture = c
	})
	if fixtureSkip != "" {
		t.Skip(fixtureSkip)
	}
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixture
}

func findPages(n int) []string {
	var pages []string
	if !try(func(t testing.TB) { pages = testutil.TrafilaturaPages(t, n) }) {
		return nil
	}
	return pages
}

func sharedJSONL() []string {
	var out []string
	if !try(func(t testing.TB) {
		for _, f := range []string{"jsonl/dolma_cc_en_head-0091.jsonl", "jsonl/dolma_cc_en_head-0174.jsonl", "jsonl/dolma_provided_documents_000.jsonl.gz"} {
			out = append(out, testutil.SharedData(t, f))
		}
	}) {
		return nil
	}
	return out
}

// try runs a test helper outside any test, reporting false when it skipped.
func try(fn func(testing.TB)) (ok bool) {
	t := &skipRecorder{}
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	fn(t)
	return !t.skipped
}

// skipRecorder is a testing.TB that turns a helper's Skip into a flag, so
// that the fixture can be built once outside any one test.
type skipRecorder struct {
	testing.TB
	skipped bool
}

func (s *skipRecorder) Helper() {}
func (s *skipRecorder) Skip(args ...any) {
	s.skipped = true
	panic("skip")
}
func (s *skipRecorder) Skipf(format string, args ...any) {
	s.skipped = true
	panic("skip")
}

func (c *corpus) tokenInputs(t testing.TB) []*Input { return c.inputs(t, c.tokens) }

func (c *corpus) docInputs(t testing.TB) []*Input { return c.inputs(t, c.docs) }

func (c *corpus) inputs(t testing.TB, dirs map[string]string) []*Input {
	t.Helper()
	var ins []*Input
	for _, s := range c.sources {
		in, err := OpenInput(s, dirs[s], 0)
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, in)
	}
	return ins
}

// shardDoc is one document of token shards, read with smelt's own reader.
type shardDoc struct {
	id, source string
	tokens     []uint32
}

// readTokenDocs reads every document of token-shard directories in
// manifest order with shards.ReadTokenShard.
func readTokenDocs(t testing.TB, dirs ...string) []shardDoc {
	t.Helper()
	var out []shardDoc
	for _, d := range dirs {
		m, err := shards.ReadManifest(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range m.Shards {
			ts, err := shards.ReadTokenShard(filepath.Join(d, info.Name), &info, m.Tokenizer.VocabSize)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < ts.Rows(); i++ {
				out = append(out, shardDoc{id: ts.ID(i), source: ts.Source(i), tokens: ts.AppendTokens(nil, i, 0, ts.Len(i))})
			}
		}
	}
	return out
}

// writeTokenDir writes a token-shard directory with its manifest: fill
// writes the documents.
func writeTokenDir(dir string, opt shards.TokenWriterOptions, fill func(*shards.TokenWriter) error) error {
	w, err := shards.NewTokenWriter(dir, opt)
	if err != nil {
		return err
	}
	if err := fill(w); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	tok := opt.Tokenizer
	m := &shards.Manifest{Kind: shards.KindTokens, Stage: "test", Shards: w.Shards(), Totals: shards.SumShards(w.Shards()), Tokenizer: &tok}
	return shards.WriteManifest(dir, m)
}

func export(t testing.TB, ins []*Input, out string, opt Options) *Provenance {
	t.Helper()
	p, err := Run(context.Background(), ins, out, opt)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readDocs(t testing.TB, dirs ...string) []*shards.Document {
	t.Helper()
	return testutil.ReadDocs(t, dirs...)
}

// python returns a Python 3 interpreter that imports all of modules,
// skipping the test with a message when there is none (Debian's
// python3-numpy and python3-torch live in /usr/bin/python3, which a
// pyenv or virtualenv python3 on PATH may hide).
func python(t testing.TB, modules ...string) string {
	t.Helper()
	var cands []string
	if p, err := exec.LookPath("python3"); err == nil {
		cands = append(cands, p)
	}
	cands = append(cands, "/usr/bin/python3")
	imp := "import sys"
	for _, m := range modules {
		imp += "; import " + m
	}
	for _, c := range cands {
		if err := exec.Command(c, "-c", imp).Run(); err == nil {
			return c
		}
	}
	t.Skipf("no python3 with %v found (apt-get install python3-numpy python3-torch, as .ci/run does)", modules)
	return ""
}
