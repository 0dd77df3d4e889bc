package main

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// treeFiles reads every file under dir, by relative path.
func treeFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDedupClusterTasksSameBytes: smelt dedup with --cluster-tasks 1 and
// 4 on a synthetic corpus with near-duplicate groups and URL dedup writes
// byte-identical outputs (shards, dropped, stats, decision files,
// clusters) and prints the same summary.
func TestDedupClusterTasksSameBytes(t *testing.T) {
	tmp := t.TempDir()
	synth := filepath.Join(tmp, "synth")
	if out, err := runSmelt(t, "dedup", "synth", "--out", synth, "--docs", "1500", "--tasks", "3", "--near", "0.5", "--group-max", "6", "--words", "60"); err != nil {
		t.Fatal(err, out)
	}
	ins, _ := filepath.Glob(filepath.Join(synth, "0000*"))
	var want map[string][]byte
	var wantSummary string
	for _, n := range []string{"1", "4"} {
		out := filepath.Join(tmp, "out"+n)
		args := append([]string{"dedup"}, ins...)
		summary, err := runSmelt(t, append(args, "--out", out, "--cluster-tasks", n, "--workers", "2", "--verify", "survivor")...)
		if err != nil {
			t.Fatal(err, summary)
		}
		got := treeFiles(t, out)
		if _, ok := got[filepath.Join("dedup_decisions", "dec-00002.jsonl")]; !ok {
			t.Fatalf("--cluster-tasks %s: no decision file for the third input: %v", n, got)
		}
		if want == nil {
			want, wantSummary = got, summary
			if !strings.Contains(summary, "dedup:minhash") {
				t.Fatalf("nothing dropped as a near duplicate: %s", summary)
			}
			continue
		}
		if summary != wantSummary {
			t.Errorf("--cluster-tasks %s printed %q, 1 task %q", n, summary, wantSummary)
		}
		var names []string
		for k := range want {
			names = append(names, k)
		}
		sort.Strings(names)
		if len(got) != len(want) {
			t.Fatalf("--cluster-tasks %s: %d files, 1 task %d", n, len(got), len(want))
		}
		for _, k := range names {
			if !bytes.Equal(got[k], want[k]) {
				t.Errorf("--cluster-tasks %s: %s differs from 1 task's", n, k)
			}
		}
	}
}
