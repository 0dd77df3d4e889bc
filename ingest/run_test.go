package ingest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"

	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
)

func TestRunHTMLPagesDeterministicAcrossWorkers(t *testing.T) {
	pages := testutil.TrafilaturaPages(t, 40)
	var outs []string
	workers := []int{1, 3}
	if os.Getenv("SMELT_THOROUGH") != "" {
		workers = []int{1, 2, 4}
	}
	for _, w := range workers {
		out := t.TempDir()
		st, err := Run(context.Background(), pages, out, Options{Source: "pages", Workers: w, TargetBytes: 32 << 10})
		if err != nil {
			t.Fatal(err)
		}
		if st.In.Docs != 40 {
			t.Fatalf("in: %d records, want 40", st.In.Docs)
		}
		if err := st.Balanced(); err != nil {
			t.Fatal(err)
		}
		if st.Out.Docs < 30 {
			t.Fatalf("only %d of 40 real pages produced text", st.Out.Docs)
		}
		outs = append(outs, out)
	}
	for _, o := range outs[1:] {
		testutil.SameTree(t, outs[0], o)
	}
	docs := testutil.ReadDocs(t, outs[0])
	m, err := shards.ReadManifest(outs[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Shards) < 2 {
		t.Fatalf("expected several 32 KiB shards, got %d", len(m.Shards))
	}
	if m.Totals.Rows != int64(len(docs)) || len(m.Inputs) != 40 {
		t.Fatalf("manifest totals %+v, %d inputs; read %d docs", m.Totals, len(m.Inputs), len(docs))
	}
	seen := map[string]bool{}
	for _, d := range docs {
		if seen[d.ID] {
			t.Errorf("duplicate id %s", d.ID)
		}
		seen[d.ID] = true
		if !strings.HasPrefix(d.ID, "pages/") || d.Source != "pages" || d.Lang == "" || !utf8.ValidString(d.Text) || len(d.Text) == 0 {
			t.Errorf("bad document %+v", d)
		}
	}
}

func TestRunCountsBrokenInputsAndGoesOn(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "a.jsonl")
	os.WriteFile(good, []byte(`{"id":"1","text":"first document"}
{"id":"2","text":
{"id":"3","text":"third document"}
`), 0o644)
	empty := filepath.Join(dir, "b.jsonl")
	os.WriteFile(empty, nil, 0o644)
	gz := filepath.Join(dir, "c.jsonl.gz")
	os.WriteFile(gz, []byte("\x1f\x8b\x08\x00garbage that is not deflate"), 0o644)
	out := t.TempDir()
	st, err := Run(context.Background(), []string{good, empty, gz}, out, Options{Source: "t"})
	if err != nil {
		t.Fatalf("record errors must not fail the run: %v", err)
	}
	if err := st.Balanced(); err != nil {
		t.Fatal(err)
	}
	if st.Out.Docs != 2 {
		t.Fatalf("kept %d docs, want the 2 complete ones", st.Out.Docs)
	}
	if st.Errors[ErrEmptyFile].Docs != 1 {
		t.Errorf("empty file not counted: %+v", st.Errors)
	}
	if e := shards.SumCounts(st.Errors); e.Docs < 3 {
		t.Errorf("want the bad line, the empty file and the corrupt gzip counted; got %+v", st.Errors)
	}
	joined := strings.Join(st.ErrorSamples, "\n")
	if !strings.Contains(joined, "a.jsonl") || !strings.Contains(joined, "c.jsonl.gz") {
		t.Errorf("error messages must name the files:\n%s", joined)
	}
	// --strict stops at the first.
	if _, err := Run(context.Background(), []string{good}, t.TempDir(), Options{Source: "t", Strict: true}); err == nil {
		t.Fatal("strict run with a bad line succeeded")
	}
}

func TestRunGroundTruthCounts(t *testing.T) {
	cases := []struct {
		file   string
		docs   int64            // documents written
		errors map[string]int64 // error kinds that must be counted exactly
	}{
		{"warc/dolma_sample-0000.warc.gz", 22, nil},
		{"warc/resiliparse_CC-MAIN-2020-34_warcfile.warc.gz", 16, nil},
		{"warc/resiliparse_clueweb09-ja_quirk.warc.gz", 29, nil},
		{"wet/jh_CC-MAIN-2016-50_filter_test_1.wet.gz", 25, nil},
		{"wet/jh_appended_zip_fragment_unexpected_eof.wet.gz", 15, map[string]int64{ErrWARCTruncated: 1}},
		// Two conversions and no warcinfo: the second conversion is cut off
		// by the end of the file (its Content-Length says 9,359 bytes and
		// 3,124 follow), so it is counted as truncated, not written.
		{"wet/jh_CC-MAIN-2016-50_fragment2_no_header.wet.gz", 1, map[string]int64{ErrWARCTruncated: 1, ErrWARCNoWARCInfo: 1}},
		{"warc/resiliparse_clipped.warc.gz", 0, nil},
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.file), func(t *testing.T) {
			p := testutil.SharedData(t, c.file)
			st, err := Run(context.Background(), []string{p}, t.TempDir(), Options{Source: "cc"})
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Balanced(); err != nil {
				t.Fatal(err)
			}
			if st.Out.Docs != c.docs {
				t.Errorf("%d documents, want %d (stats %+v %+v)", st.Out.Docs, c.docs, st.Dropped, st.Errors)
			}
			for kind, n := range c.errors {
				if st.Errors[kind].Docs != n {
					t.Errorf("%s: %d counted, want %d (%v)", kind, st.Errors[kind].Docs, n, st.ErrorSamples)
				}
			}
			if c.docs == 0 && shards.SumCounts(st.Errors).Docs == 0 {
				t.Errorf("a truncated record must be counted as an error: %+v", st.Errors)
			}
			for _, e := range st.ErrorSamples {
				if !strings.Contains(e, filepath.Base(c.file)) || !strings.Contains(e, "offset") {
					t.Errorf("error does not name file and offset: %s", e)
				}
			}
		})
	}
}

// TestRunResumesAfterKill kills a real ingest process with SIGKILL at
// several points and checks that rerunning it gives byte-identical output.
// The child kills itself when it has emitted a given number of records, so
// where the kill lands does not depend on the machine's speed or load.
func TestRunResumesAfterKill(t *testing.T) {
	if os.Getenv("SMELT_INGEST_CHILD") != "" {
		return
	}
	n, at := 32, []int{12, 24}
	if testing.Short() {
		n, at = 24, []int{12}
	}
	if os.Getenv("SMELT_THOROUGH") != "" {
		n, at = 120, []int{10, 30, 60, 90, 115}
	}
	pages := testutil.TrafilaturaPages(t, n)
	listFile := filepath.Join(t.TempDir(), "inputs")
	os.WriteFile(listFile, []byte(strings.Join(pages, "\n")), 0o644)
	ref := t.TempDir()
	if _, err := Run(context.Background(), pages, ref, Options{Source: "pages", Workers: 2, TargetBytes: 16 << 10}); err != nil {
		t.Fatal(err)
	}
	resumed := 0
	for _, killAt := range at {
		out := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestIngestChild$")
		cmd.Env = append(os.Environ(), "SMELT_INGEST_CHILD="+listFile, "SMELT_INGEST_OUT="+out, fmt.Sprintf("SMELT_INGEST_KILL_AT=%d", killAt))
		if err := cmd.Run(); err == nil {
			t.Fatalf("the child killed at record %d exited cleanly", killAt)
		}
		if cp, _ := shards.LoadCheckpoint(out); cp != nil {
			resumed++
		}
		if _, err := Run(context.Background(), pages, out, Options{Source: "pages", Workers: 1, TargetBytes: 16 << 10}); err != nil {
			t.Fatalf("resume after kill at record %d: %v", killAt, err)
		}
		testutil.SameTree(t, ref, out)
	}
	if resumed == 0 {
		t.Error("no kill landed mid-run (after a checkpoint, before the end): the test proved nothing")
	}
}

// TestIngestChild is the process that TestRunResumesAfterKill kills.
func TestIngestChild(t *testing.T) {
	list := os.Getenv("SMELT_INGEST_CHILD")
	if list == "" {
		t.Skip("helper process for TestRunResumesAfterKill")
	}
	data, _ := os.ReadFile(list)
	pages := strings.Split(string(data), "\n")
	killAt, _ := strconv.ParseInt(os.Getenv("SMELT_INGEST_KILL_AT"), 10, 64)
	Run(context.Background(), pages, os.Getenv("SMELT_INGEST_OUT"), Options{Source: "pages", Workers: 2, TargetBytes: 16 << 10,
		Progress: func(p Progress) {
			if p.Records == killAt {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}})
}

// TestRunResumesMidFile stops a run inside one large multi-record input at
// many points and checks that every rerun ends with the reference bytes.
func TestRunResumesMidFile(t *testing.T) {
	dir := t.TempDir()
	n := int64(1000)
	stops := []int64{1, 417, n + 1}
	if os.Getenv("SMELT_THOROUGH") != "" {
		n = 3000
		stops = []int64{1, 200, 1234, 2999, 3001}
	}
	var b strings.Builder
	broken := int64(0)
	for i := 0; i < int(n); i++ {
		if i%97 == 13 {
			b.WriteString("{broken json line\n")
			broken++
			continue
		}
		fmt.Fprintf(&b, `{"id":"d%d","text":"document number %d %s","metadata":{"i":%d}}`+"\n", i, i, strings.Repeat("word ", i%50), i)
	}
	in := filepath.Join(dir, "big.jsonl")
	os.WriteFile(in, []byte(b.String()), 0o644)
	small := filepath.Join(dir, "small.jsonl")
	os.WriteFile(small, []byte(`{"id":"s","text":"a small second input"}`+"\n"), 0o644)
	files := []string{in, small}
	opt := Options{Source: "j", Workers: 2, TargetBytes: 8 << 10}
	ref := t.TempDir()
	st, err := Run(context.Background(), files, ref, opt)
	if err != nil {
		t.Fatal(err)
	}
	if st.In.Docs != n+1 || st.Errors[ErrJSONInvalid].Docs != broken {
		t.Fatalf("in %d, json errors %d; want %d and %d", st.In.Docs, st.Errors[ErrJSONInvalid].Docs, n+1, broken)
	}
	for _, stopAt := range stops {
		out := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		o := opt
		o.Progress = func(p Progress) {
			if p.Records == stopAt {
				cancel()
			}
		}
		// A stop near the end may land after the last record was written:
		// then the run finished and the rerun finds it complete.
		if _, err := Run(ctx, files, out, o); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("stop at %d: %v", stopAt, err)
		}
		o.Progress, o.Workers = nil, 1
		if _, err := Run(context.Background(), files, out, o); err != nil {
			t.Fatal(err)
		}
		testutil.SameTree(t, ref, out)
	}
}

func TestExpandInputs(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b.jsonl", "a.jsonl", "sub/c.txt", "sub/.hidden", "odd [1].html"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(n)), 0o755)
		os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644)
	}
	got, err := ExpandInputs(context.Background(), []string{filepath.Join(dir, "*.jsonl"), filepath.Join(dir, "sub"), filepath.Join(dir, "odd [1].html"), filepath.Join(dir, "a.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	var rel []string
	for _, g := range got {
		r, _ := filepath.Rel(dir, g)
		rel = append(rel, r)
	}
	if want := "[a.jsonl b.jsonl sub/c.txt odd [1].html]"; fmt.Sprint(rel) != want {
		t.Errorf("got %v, want %s", rel, want)
	}
	for _, bad := range [][]string{{filepath.Join(dir, "*.parquet")}, {filepath.Join(dir, "missing")}, {}} {
		if _, err := ExpandInputs(context.Background(), bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

func TestUniqueNames(t *testing.T) {
	got := UniqueNames([]string{"site/a/index.html", "site/b/index.html", "site/about.html", "other/x/about.txt", "c/d/e/index.html"})
	want := []string{"a/index.html", "b/index.html", "about.html", "about.txt", "e/index.html"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestRunSameNamedPagesGetDistinctIDs ingests a directory tree in which two
// pages share a file name: their ids must differ (dedup relies on it).
func TestRunSameNamedPagesGetDistinctIDs(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"a", "b"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
		os.WriteFile(filepath.Join(dir, d, "index.txt"), []byte("a page of plain text in directory "+d), 0o644)
	}
	files, err := ExpandInputs(context.Background(), []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if _, err := Run(context.Background(), files, out, Options{Source: "s"}); err != nil {
		t.Fatal(err)
	}
	docs := testutil.ReadDocs(t, out)
	if len(docs) != 2 || docs[0].ID != "s/a/index.txt" || docs[1].ID != "s/b/index.txt" {
		for _, d := range docs {
			t.Log(d.ID)
		}
		t.Fatal("want ids s/a/index.txt and s/b/index.txt")
	}
}
