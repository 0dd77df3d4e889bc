package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/store"
)

// remoteSamples are real crawl files for the object-store tests.
var remoteSamples = []string{
	"warc/dolma_sample-0000.warc.gz",
	"warc/dolma_sample-0001.warc.gz",
	"wet/jh_CC-MAIN-2016-50_filter_test_1.wet.gz",
}

// partFiles maps every shard file under dir (by relative path) to its bytes.
func partFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	m := testutil.TreeFiles(t, dir)
	for k := range m {
		if !strings.HasSuffix(k, ".arrow") {
			delete(m, k)
		}
	}
	return m
}

func sameParts(t *testing.T, want, got string) {
	t.Helper()
	a, b := partFiles(t, want), partFiles(t, got)
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%d shard files locally, %d through the store", len(a), len(b))
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			t.Fatalf("%s differs between the local run and the store run", k)
		}
	}
}

// TestS3InputsOutputsAndRunDir: ingest s3:// -> s3://, smelt stats and
// report on the store, and a whole pipeline with s3:// inputs and
// --run-dir s3:// give the same shard bytes as local files and dirs.
func TestS3InputsOutputsAndRunDir(t *testing.T) {
	s3 := testutil.StartS3(t, "crawl", "out")
	t.Setenv("SMELT_STAGING", t.TempDir())
	dir := t.TempDir()
	local := filepath.Join(dir, "crawl")
	if err := os.MkdirAll(local, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range remoteSamples {
		src := testutil.SharedData(t, s)
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(local, filepath.Base(s)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		s3.PutBytes(t, "crawl", "cc/"+filepath.Base(s), data)
	}

	// smelt ingest, local and s3:// -> s3://.
	wantIngest := filepath.Join(dir, "ingest")
	if out, err := runSmelt(t, "ingest", local, "--out", wantIngest, "--source", "cc", "-j", "2"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := runSmelt(t, "ingest", "s3://crawl/cc/", "--out", "s3://out/ingest/cc", "--source", "cc", "-j", "2"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	fetched, err := store.Fetch(context.Background(), "s3://out/ingest/cc", nil)
	if err != nil {
		t.Fatal(err)
	}
	sameParts(t, wantIngest, fetched)
	out, err := runSmelt(t, "stats", "s3://out/ingest/cc")
	if err != nil || !strings.Contains(out, "s3://crawl/cc/dolma_sample-0000.warc.gz") {
		t.Fatalf("smelt stats on s3://: %v\n%s", err, out)
	}
	// The counts are the local run's.
	var a, b struct {
		Stats json.RawMessage `json:"stats"`
	}
	ja, _ := runSmelt(t, "stats", wantIngest, "--json")
	jb, err := runSmelt(t, "stats", "s3://out/ingest/cc", "--json")
	if err != nil || json.Unmarshal([]byte(ja), &a) != nil || json.Unmarshal([]byte(jb), &b) != nil || len(a.Stats) < 100 || !bytes.Equal(a.Stats, b.Stats) {
		t.Fatalf("stats differ (%v):\n%.600s\nvs\n%.600s", err, ja, jb)
	}
	if out, err := runSmelt(t, "report", "s3://out/ingest/cc", "--out", filepath.Join(dir, "report.html")); err != nil {
		t.Fatalf("smelt report on s3://: %v\n%s", err, out)
	}

	// The next stages read s3:// directories and write s3:// outputs.
	for _, step := range [][]string{
		{"filter", "ingest", "filter", "--rules", "gopher_quality"},
		{"dedup", "filter", "dedup", "--exact"},
		{"tokenize", "dedup", "tokens", "--tokenizer", "gpt2"},
	} {
		verb, from, to := step[0], step[1], step[2]
		if out, err := runSmelt(t, append([]string{verb, filepath.Join(dir, from), "--out", filepath.Join(dir, to)}, step[3:]...)...); err != nil {
			t.Fatalf("local %s: %v\n%s", verb, err, out)
		}
		if out, err := runSmelt(t, append([]string{verb, "s3://out/" + from + "/cc", "--out", "s3://out/" + to + "/cc"}, step[3:]...)...); err != nil {
			t.Fatalf("%s on s3://: %v\n%s", verb, err, out)
		}
		got, err := store.Fetch(context.Background(), "s3://out/"+to+"/cc", nil)
		if err != nil {
			t.Fatal(err)
		}
		sameParts(t, filepath.Join(dir, to), got)
	}

	// A pipeline: s3:// inputs and an s3:// run directory.
	recipe := func(name, input string) string {
		p := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(p, []byte(`name: `+name+`
sources:
  - name: cc
    inputs: [`+input+`]
    weight: 1
    tasks: 2
    filter: {rules: [gopher_quality]}
dedup: {exact: true, minhash: false}
tokenizer: {name: gpt2}
`), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	wantRun := filepath.Join(dir, "run")
	if out, err := runSmelt(t, "run", recipe("local", local), "--run-dir", wantRun, "-j", "2"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := runSmelt(t, "run", recipe("remote", "s3://crawl/cc/"), "--run-dir", "s3://out/runs/r1", "-j", "2"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// The s3:// run directory itself: one line per step and where to look,
	// as for a local run directory (its recipe and markers are fetched too;
	// before the whole directory is fetched below).
	if out, err := runSmelt(t, "stats", "s3://out/runs/r1"); err != nil || !strings.Contains(out, "ingest-cc") || !strings.Contains(out, "dedup: ") ||
		!strings.Contains(out, "smelt stats s3://out/runs/r1/STEP") {
		t.Fatalf("smelt stats on the s3:// run directory: %v\n%s", err, out)
	}
	if out, err := runSmelt(t, "stats", "s3://out/runs/r1", "--json"); err != nil || !strings.Contains(out, `"dir": "s3://out/runs/r1/dedup"`) || !strings.Contains(out, `"stage": "tokenize"`) {
		t.Fatalf("smelt stats --json on the s3:// run directory: %v\n%.500s", err, out)
	}
	gotRun, err := store.Fetch(context.Background(), "s3://out/runs/r1", nil)
	if err != nil {
		t.Fatal(err)
	}
	sameParts(t, wantRun, gotRun)
	if out, err := runSmelt(t, "stats", "s3://out/runs/r1/tokenize"); err != nil || !strings.Contains(out, "tokens") {
		t.Fatalf("smelt stats on the s3:// run's tokens: %v\n%s", err, out)
	}
	if out, err := runSmelt(t, "report", "s3://out/runs/r1", "--out", filepath.Join(dir, "run.html")); err != nil {
		t.Fatalf("smelt report on the s3:// run: %v\n%s", err, out)
	}
	if html, err := os.ReadFile(filepath.Join(dir, "run.html")); err != nil || !bytes.Contains(html, []byte("dedup")) {
		t.Fatalf("the report of the s3:// run lacks its dedup step (%v)", err)
	}
	// Slurm cannot share a local staging directory: a clear refusal.
	if _, err := runSmelt(t, "run", recipe("remote", "s3://crawl/cc/"), "--run-dir", "s3://out/runs/r2", "--executor", "slurm"); err == nil || !strings.Contains(err.Error(), "executor local") {
		t.Fatalf("slurm with an s3:// run dir: %v", err)
	}
}

// TestHelperSmelt is not a test: run as a child process (SMELT_TEST_CHILD
// set), it runs the smelt command line given after "--".
func TestHelperSmelt(t *testing.T) {
	if os.Getenv("SMELT_TEST_CHILD") == "" {
		t.Skip("helper for child processes")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	root := newRootCmd()
	root.SetArgs(args)
	if err := root.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestS3OutputResumeAfterKill kills smelt ingest s3:// --out s3:// with
// SIGKILL at several points, runs it again to the end, and checks that the
// store then holds exactly what an uninterrupted run published.
func TestS3OutputResumeAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes; slow")
	}
	s3 := testutil.StartS3(t, "crawl", "out")
	t.Setenv("SMELT_STAGING", t.TempDir())
	putCopies(t, s3, 6)
	args := func(out string) []string {
		return []string{"ingest", "s3://crawl/cc/", "--out", out, "--source", "cc", "-j", "2", "--shard-mb", "1"}
	}
	ref, got := killAndResume(t, args, "s3://out/ref", "s3://out/killed")
	if len(partFiles(t, ref)) < 2 {
		t.Fatalf("only %d shards: the kills cannot land between checkpoints", len(partFiles(t, ref)))
	}
	testutil.SameTree(t, ref, got)
}

// TestS3RunDirResumeAfterKill does the same to smelt run --run-dir s3://.
func TestS3RunDirResumeAfterKill(t *testing.T) {
	// A thoroughness run: TestS3OutputResumeAfterKill kills a staged
	// s3:// output on every run, pipelines' kill tests a local run dir.
	testutil.Thorough(t)
	s3 := testutil.StartS3(t, "crawl", "out")
	t.Setenv("SMELT_STAGING", t.TempDir())
	putCopies(t, s3, 3)
	recipe := filepath.Join(t.TempDir(), "r.yaml")
	if err := os.WriteFile(recipe, []byte(`name: killed
shard_mb: 1
sources:
  - name: cc
    inputs: [s3://crawl/cc/]
    weight: 1
    tasks: 3
    filter: {rules: [gopher_quality]}
dedup: {exact: true, minhash: true}
tokenizer: {name: gpt2}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	args := func(out string) []string { return []string{"run", recipe, "--run-dir", out, "-j", "2"} }
	ref, got := killAndResume(t, args, "s3://out/runs/ref", "s3://out/runs/killed")
	sameParts(t, ref, got)
}

// stagingState lists the checkpoints and shards under the staging root
// (names and sizes): it changes as a staged run makes progress.
func stagingState(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(os.Getenv("SMELT_STAGING"), func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() && (info.Name() == shards.CheckpointName || strings.HasSuffix(p, ".arrow")) {
			fmt.Fprintf(&b, "%s %d\n", p, info.Size())
		}
		return nil
	})
	return b.String()
}

// killAndResume runs smelt ARGS(ref) to the end, then ARGS(killed) in
// child processes, each killed with SIGKILL as soon as it has made progress
// (a checkpoint or shard written since it started: an event, not a time,
// so the kills land mid-run however loaded the machine is), up to twice
// (five times under SMELT_THOROUGH), then once more to the end; it returns local copies of both
// outputs.
func killAndResume(t *testing.T, args func(out string) []string, ref, killed string) (string, string) {
	t.Helper()
	if out, err := runSmelt(t, args(ref)...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	kills, most := 0, 2
	if testutil.IsThorough() {
		most = 5
	}
	for i := 1; i <= most; i++ {
		before := stagingState(t)
		cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestHelperSmelt$", "--"}, args(killed)...)...)
		cmd.Env = append(os.Environ(), "SMELT_TEST_CHILD=1")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		var err error
	wait:
		for {
			select {
			case err = <-exited:
				break wait
			case <-time.After(20 * time.Millisecond):
			}
			if stagingState(t) != before {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				err = <-exited
				break
			}
		}
		if err == nil {
			break
		}
		if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("child failed by itself: %v\n%s", err, out.String())
		}
		kills++
	}
	if kills == 0 {
		t.Fatal("no child was killed")
	}
	if out, err := runSmelt(t, args(killed)...); err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	a, err := store.Fetch(context.Background(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := store.Fetch(context.Background(), killed, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d kills", kills)
	return a, b
}

// putCopies stores n copies of the samples as crawl/cc/I-NAME.
func putCopies(t *testing.T, s3 *testutil.S3Server, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		for _, s := range remoteSamples {
			data, err := os.ReadFile(testutil.SharedData(t, s))
			if err != nil {
				t.Fatal(err)
			}
			s3.PutBytes(t, "crawl", fmt.Sprintf("cc/%d-%s", i, filepath.Base(s)), data)
		}
	}
}
