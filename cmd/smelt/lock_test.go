package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
)

// TestTwoWritersOneOut starts a smelt verb, freezes it (SIGSTOP) while it
// writes into --out, and starts the same verb into the same --out: the
// second exits non-zero naming the first's pid, and the first, resumed,
// finishes with an output identical to a run that was alone.
func TestTwoWritersOneOut(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	// One real WARC file (237 KB): the lock is taken before any record
	// is read, so a bigger input only makes each of the runs slower.
	warcs := testutil.SharedData(t, "warc/dolma_sample-0001.warc.gz")
	root := t.TempDir()
	docs := filepath.Join(root, "docs")
	if out, err := runSmelt(t, "ingest", warcs, "--out", docs, "--workers", "1"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, verb := range []struct {
		name string
		args func(out string) []string
	}{
		{"ingest", func(out string) []string { return []string{"ingest", warcs, "--out", out, "--workers", "1"} }},
		{"filter", func(out string) []string { return []string{"filter", docs, "--out", out, "--workers", "1"} }},
		{"dedup", func(out string) []string { return []string{"dedup", docs, "--out", out, "--workers", "1"} }},
		{"tokenize", func(out string) []string {
			return []string{"tokenize", docs, "--out", out, "--tokenizer", "gpt2", "--workers", "1", "--shard-mb", "0.01"}
		}},
	} {
		// Each verb calls shards.LockOutput from its own stage code; by
		// default two of them (the ingest runner and the document-stage
		// runner that filter shares), all four under SMELT_THOROUGH.
		if !testutil.IsThorough() && verb.name != "ingest" && verb.name != "filter" {
			continue
		}
		t.Run(verb.name, func(t *testing.T) {
			ref := filepath.Join(root, verb.name+"-alone")
			if out, err := runSmelt(t, verb.args(ref)...); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			out := filepath.Join(root, verb.name)
			first := smeltProcess(t, verb.args(out)...)
			var firstErr bytes.Buffer
			first.Stderr = &firstErr
			if err := first.Start(); err != nil {
				t.Fatal(err)
			}
			lock := filepath.Join(out, shards.OutputLockName)
			stopped := false
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				if data, _ := os.ReadFile(lock); len(data) > 0 { // locked, and it says by whom
					first.Process.Signal(syscall.SIGSTOP)
					stopped = true
					break
				}
			}
			if _, err := os.Stat(lock); !stopped || err != nil {
				first.Process.Kill()
				first.Wait()
				t.Skipf("the first %s ended before it could be stopped while writing", verb.name)
			}
			second := smeltProcess(t, verb.args(out)...)
			var secondErr bytes.Buffer
			second.Stderr = &secondErr
			err := second.Run()
			first.Process.Signal(syscall.SIGCONT)
			if err == nil {
				t.Errorf("a second %s into the same --out exited 0:\n%s", verb.name, secondErr.String())
			}
			if want := fmt.Sprintf("pid %d ", first.Process.Pid); !strings.Contains(secondErr.String(), want) || !strings.Contains(secondErr.String(), "in use by") {
				t.Errorf("the second %s's error does not name the first (%s):\n%s", verb.name, want, secondErr.String())
			}
			if err := first.Wait(); err != nil {
				t.Fatalf("the first %s: %v\n%s", verb.name, err, firstErr.String())
			}
			testutil.SameTree(t, ref, out)
		})
	}
}
