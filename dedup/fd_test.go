package dedup

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
)

// TestManyInputsFewDescriptors is the descriptor case: a run of
// 150 input directories against a store holding one run of 150 tasks, in a
// child process whose open files are limited to 256 (RLIMIT_NOFILE). Bucket
// merges go two-level past maxFanIn files and the document files are an
// LRU of maxDocFiles, so it passes; before, it failed at 512.
func TestManyInputsFewDescriptors(t *testing.T) {
	testutil.Thorough(t)
	skipUnderRace(t)
	dir := t.TempDir()
	const tasks = 150
	mk := func(name string, seed int64) []string {
		var ins []string
		docs := genCorpus(seed, tasks*4, name, "web").docs
		for i := 0; i < tasks; i++ {
			in := filepath.Join(dir, fmt.Sprintf("%s%03d", name, i))
			writeInput(t, in, docs[len(docs)*i/tasks:len(docs)*(i+1)/tasks], 0)
			ins = append(ins, in)
		}
		return ins
	}
	first, second := mk("f", 1), mk("s", 2)
	// The second crawl re-captures some of the first's documents.
	extra := filepath.Join(dir, "s-recapture")
	writeInput(t, extra, genCorpus(1, 40, "f", "web").docs, 0)
	second = append(second[:tasks-1], extra)
	if err := os.WriteFile(filepath.Join(dir, "first"), []byte(strings.Join(first, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "second"), []byte(strings.Join(second, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, which := range []string{"first", "second"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFDHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "SMELT_DEDUP_FD_CHILD="+dir, "SMELT_DEDUP_FD_WHICH="+which)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "fd child ok") {
			t.Fatalf("%s run at ulimit -n 256: %v\n%s", which, err, tail(string(out), 3000))
		}
		t.Logf("%s run: %s", which, lastLine(string(out), "fd child ok"))
	}
}

func tail(s string, n int) string { return s[max(0, len(s)-n):] }

func lastLine(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// TestFDHelperProcess is TestManyInputsFewDescriptors' child.
func TestFDHelperProcess(t *testing.T) {
	dir := os.Getenv("SMELT_DEDUP_FD_CHILD")
	if dir == "" {
		t.Skip("helper process for TestManyInputsFewDescriptors")
	}
	which := os.Getenv("SMELT_DEDUP_FD_WHICH")
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = 256
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, which))
	if err != nil {
		t.Fatal(err)
	}
	st, res, err := Run(context.Background(), Config{Inputs: strings.Split(string(b), "\n"), Out: filepath.Join(dir, "out-"+which),
		StorePath: filepath.Join(dir, "store"), Workers: 2, BucketTasks: 4})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(3)
	}
	fmt.Printf("fd child ok: %d in, %d kept, %d matched in the store\n", st.In.Docs, st.Out.Docs, res.Summary.StoreExact+res.Summary.StoreMinHash)
	if which == "second" && res.Summary.StoreExact+res.Summary.StoreMinHash == 0 {
		fmt.Println("error: no document matched the store")
		os.Exit(3)
	}
	_ = shards.DroppedDir
	os.Exit(0)
}
