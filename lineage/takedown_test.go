package lineage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/smelt-dev/smelt/dedup"
	"github.com/smelt-dev/smelt/export"
	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/pipelines"
	"github.com/smelt-dev/smelt/shards"
)

// pickRequest chooses what the tests take down: three kept documents of
// the first token shard (so every later shard boundary moves) and one
// host, with their duplicates.
func pickRequest(t *testing.T, run string) Request {
	t.Helper()
	ix, err := Open(context.Background(), run)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	var urls []string
	for _, l := range allDocs(t, ix) {
		if e := eventOf(l, "tokenize"); e != nil && e.Row < 40 && len(urls) < 3 && !strings.Contains(l.URL, "site3.") {
			urls = append(urls, l.URL)
		}
	}
	if len(urls) < 3 {
		t.Fatalf("too few kept documents: %v", urls)
	}
	return Request{URLs: urls, Domains: []string{"site3.example"}, WithDuplicates: true}
}

// outputs are the files a takedown rewrites and a rerun from tokenize
// writes: token shards, the mix and every export.
func outputs(t *testing.T, run string) map[string][]byte {
	t.Helper()
	subs := []string{"tokenize", pipelines.MixFileName}
	ents, _ := os.ReadDir(run)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "export-") {
			subs = append(subs, e.Name())
		}
	}
	return treeFiles(t, run, subs...)
}

// rerunFromTokenize removes the tokenize and export outputs with their
// markers and runs the recipe again: the tokenizer is kept (its marker
// stands), the documents are the run's current dedup output.
func rerunFromTokenize(t *testing.T, run string) {
	t.Helper()
	r, err := pipelines.OpenExisting(run, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Plan.Steps {
		if s.Kind == pipelines.KindTokenize || s.Kind == pipelines.KindExport {
			for _, p := range []string{filepath.Join(run, s.Name), filepath.Join(run, pipelines.StateDir, "tasks", s.Name)} {
				if err := os.RemoveAll(p); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	os.Remove(filepath.Join(run, pipelines.MixFileName))
	if err := r.RunLocal(context.Background(), pipelines.LocalOptions{Workers: 2}); err != nil {
		t.Fatal(err)
	}
}

// TestTakedownEqualsRerun: token shards, mix and exports after a takedown
// are byte for byte what tokenize and export give on the dedup output
// with the documents removed; manifests and stats agree with the shards.
func TestTakedownEqualsRerun(t *testing.T) {
	_, run := freshRun(t)
	req := pickRequest(t, run)
	before := outputs(t, run)
	copied0, _ := export.ReuseCounts()
	rec, err := Takedown(context.Background(), run, req, TakedownOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Matched) < 4 {
		t.Fatalf("matched %v", rec.Matched)
	}
	// The exports copied the blocks the removed documents did not touch
	// (the JSONL and Parquet files: a few documents of each shard are
	// removed, most blocks hold none of them).
	if copied, _ := export.ReuseCounts(); copied == copied0 {
		t.Fatal("the takedown's exports copied no block of the earlier exports")
	}
	after := outputs(t, run)
	changed := 0
	for k, v := range after {
		if string(before[k]) != string(v) {
			changed++
		}
	}
	if changed == 0 {
		t.Fatal("takedown changed no output")
	}
	// The audit record lists every changed file with its sha256.
	for _, f := range rec.Files {
		if f.NewSHA256 == "" {
			continue
		}
		sum, _, err := shards.FileSHA256(filepath.Join(run, f.Path))
		if err != nil || sum != f.NewSHA256 || f.OldSHA256 == f.NewSHA256 {
			t.Fatalf("takedown.json: %+v, file now %s %v", f, sum, err)
		}
	}
	checkConsistent(t, run)
	rerunFromTokenize(t, run)
	sameFiles(t, "takedown vs rerun", after, outputs(t, run))
}

// checkConsistent verifies every manifest of the run against its shards
// and every stats.json against its manifest.
func checkConsistent(t *testing.T, run string) {
	t.Helper()
	err := filepath.Walk(run, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || info.Name() != shards.ManifestName || strings.Contains(p, pipelines.StateDir) {
			return err
		}
		dir := filepath.Dir(p)
		m, err := shards.ReadManifest(dir)
		if err != nil {
			return err
		}
		var rows int64
		for _, s := range m.Shards {
			if err := shards.VerifyShard(filepath.Join(dir, s.Name), s); err != nil {
				return err
			}
			rows += s.Rows
		}
		if rows != m.Totals.Rows {
			return fmt.Errorf("%s: totals %d rows, shards %d", dir, m.Totals.Rows, rows)
		}
		if st, err := shards.ReadStats(dir); err == nil && m.Kind != shards.KindDropped {
			if st.Out.Docs != m.Totals.Rows {
				return fmt.Errorf("%s: stats keep %d, manifest %d rows", dir, st.Out.Docs, m.Totals.Rows)
			}
			if err := st.Balanced(); err != nil {
				return fmt.Errorf("%s: %w", dir, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// childTakedown is the test binary as a takedown process that kills
// itself (SIGKILL) at the Nth hook point or phase: "takedown-child RUN
// URLS_FILE N".
func childTakedown(args []string) int {
	run, n := args[0], 0
	req := Request{WithDuplicates: true}
	data, _ := os.ReadFile(args[1])
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if strings.HasPrefix(l, "domain ") {
			req.Domains = append(req.Domains, strings.TrimPrefix(l, "domain "))
		} else {
			req.URLs = append(req.URLs, l)
		}
	}
	// A number kills at that point; text at the first point whose name
	// holds it.
	kill, err := strconv.Atoi(args[2])
	if err != nil {
		kill = -1
	}
	var mu sync.Mutex // phases run in parallel
	count := func(point string) {
		mu.Lock()
		defer mu.Unlock()
		if n++; n == kill || kill < 0 && strings.Contains(point, args[2]) {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
	testHook = count
	if _, err := Takedown(context.Background(), run, req, TakedownOptions{AfterPhase: count}); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// TestTakedownKillResume kills takedowns (kill -9, a child process) at
// chosen points, runs them again, and gets the bytes of an uninterrupted
// takedown.
func TestTakedownKillResume(t *testing.T) {
	// A shard replaced before its manifest, half-way through swapping the
	// token shards and an export (the thorough run also kills after the
	// merges and before the record, and at every other point).
	killResume(t, []string{"shard ", "tokenize/tasks", "export-llmc"})
}

// TestTakedownKillResumeEverywhere kills at every other point.
func TestTakedownKillResumeEverywhere(t *testing.T) {
	testutil.Thorough(t)
	steps := []string{"merge dedup", "record"}
	for i := 1; i < 60; i += 2 {
		steps = append(steps, strconv.Itoa(i))
	}
	killResume(t, steps)
}

func killResume(t *testing.T, steps []string) {
	dir, run := freshRun(t)
	req := pickRequest(t, run)
	reqFile := filepath.Join(dir, "req.txt")
	lines := append([]string(nil), req.URLs...)
	for _, d := range req.Domains {
		lines = append(lines, "domain "+d)
	}
	if err := os.WriteFile(reqFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pristine := t.TempDir()
	if err := copyTree(run, pristine); err != nil {
		t.Fatal(err)
	}
	child := func(kill string) error {
		cmd := exec.Command(os.Args[0], "takedown-child", run, reqFile, kill)
		out, err := cmd.CombinedOutput()
		if err != nil && !strings.Contains(err.Error(), "killed") {
			return fmt.Errorf("%v: %s", err, out)
		}
		return err
	}
	if err := child("0"); err != nil {
		t.Fatal(err)
	}
	want := treeFiles(t, run, ".")
	delete(want, TakedownFile)
	for _, kill := range steps {
		if err := os.RemoveAll(run); err != nil {
			t.Fatal(err)
		}
		if err := copyTree(pristine, run); err != nil {
			t.Fatal(err)
		}
		err := child(kill)
		if err == nil {
			break // fewer points than kill: nothing left to test
		}
		if err := child("0"); err != nil {
			t.Fatalf("resume after kill at %s: %v", kill, err)
		}
		if _, err := os.Stat(filepath.Join(run, pipelines.StateDir, journalName)); err == nil {
			t.Fatalf("killed at %s: the journal outlived the takedown", kill)
		}
		recs, err := ReadTakedowns(run)
		if err != nil || len(recs) != 1 {
			t.Fatalf("killed at %s: %d takedown records, %v", kill, len(recs), err)
		}
		got := treeFiles(t, run, ".")
		delete(got, TakedownFile)
		sameFiles(t, "killed at "+kill, want, got)
	}
}

// TestLaterRunKeepsTakenDownOut: a later run whose optout rule reads the
// store's takedown list drops the taken-down documents at the filter,
// with the reason and the matching id, and keeps the rest.
func TestLaterRunKeepsTakenDownOut(t *testing.T) {
	dir, run := freshRun(t)
	req := pickRequest(t, run)
	rec, err := Takedown(context.Background(), run, req, TakedownOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rec.List != filepath.Join(dir, "store", TakedownListFile) {
		t.Fatalf("takedown list %s, want the dedup store's", rec.List)
	}
	later := strings.Replace(testRecipe, "rules: [gopher_quality]", "rules: [optout, gopher_quality]\n      optout:\n        takedowns: [store/"+TakedownListFile+"]", 1)
	if later == testRecipe {
		t.Fatal("recipe not changed")
	}
	if err := os.Rename(run, filepath.Join(dir, "run-1")); err != nil {
		t.Fatal(err)
	}
	run2 := runPipeline(t, dir, later)
	ix, err := Open(context.Background(), run2)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	taken := setOf(rec.Matched)
	var passed int
	for _, l := range allDocs(t, ix) {
		f := eventOf(l, "filter-crawl")
		if f == nil {
			t.Fatalf("%s: no filter event", l.ID)
		}
		if taken[l.ID] {
			if f.Kept || f.Reason != "optout/takedown" || f.Value != "id "+l.ID {
				t.Errorf("taken-down %s in the later run: %+v", l.ID, f)
			}
			delete(taken, l.ID)
			continue
		}
		if f.Kept || f.Reason != "optout/takedown" {
			passed++
		}
	}
	// Every taken-down document came back in the crawl and was dropped
	// (those dropped upstream of the filter are not in its input).
	for id := range taken {
		t.Errorf("taken-down %s not seen by the later run's filter", id)
	}
	if passed == 0 {
		t.Fatal("the later run's optout dropped everything")
	}
}

// TestTakedownRefusedWhileLocked: another process holding the run's lock
// (a smelt run, another takedown) makes a takedown fail at once, changing
// nothing.
func TestTakedownRefusedWhileLocked(t *testing.T) {
	_, run := freshRun(t)
	req := pickRequest(t, run)
	before := treeFiles(t, run, ".")
	cmd := exec.Command(os.Args[0], "hold-lock", run)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	line := make([]byte, 5)
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "held\n" {
		t.Fatalf("lock holder: %q %v", line, err)
	}
	_, err = Takedown(context.Background(), run, req, TakedownOptions{})
	if err == nil || !strings.Contains(err.Error(), "another smelt process") {
		t.Fatalf("takedown under another process's lock: %v", err)
	}
	sameFiles(t, "refused takedown", before, treeFiles(t, run, "."))
}

// TestLaterRunWithoutOptoutDropsByStore: a takedown adds the removed
// documents' text to the recipe's dedup store, so a later run with the
// same store and no optout rule drops them, and copies of their text at
// other URLs, as duplicates of the taken-down documents, even after the
// first run's own segment is removed from the store; the run start warns
// that the takedown list is not read.
func TestLaterRunWithoutOptoutDropsByStore(t *testing.T) {
	dir, run := freshRun(t)
	req := pickRequest(t, run)
	rec, err := Takedown(context.Background(), run, req, TakedownOptions{})
	if err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(dir, "store", "crawl")
	if len(rec.Store) != 1 || rec.Store[0].Store != store || rec.Store[0].Documents == 0 {
		t.Fatalf("takedown.json store: %+v", rec.Store)
	}
	// Keep only the takedown's segment: the first run's kept documents no
	// longer deduplicate anything.
	segs, err := dedup.ListSegments(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	var rm []uint64
	for _, s := range segs {
		if s.Gen != rec.Store[0].Segment {
			rm = append(rm, s.Gen)
		}
	}
	if len(rm) == 0 || len(rm) == len(segs) {
		t.Fatalf("segments %+v, takedown's %d", segs, rec.Store[0].Segment)
	}
	if _, err := dedup.RemoveSegments(context.Background(), store, rm); err != nil {
		t.Fatal(err)
	}
	// Copies of the taken-down documents' text at new URLs.
	taken := map[string]bool{}
	reached := map[string]bool{} // taken down after reaching dedup
	keys := map[string]bool{}
	for _, d := range rec.Documents {
		taken[d.ID] = true
		for _, e := range d.Events {
			if e.Kind == pipelines.KindDedup {
				reached[d.ID] = true
			}
			if e.RecordKey != "" && e.Kind == pipelines.KindIngest {
				keys[e.RecordKey] = true
			}
		}
	}
	var copies bytes.Buffer
	files, _ := filepath.Glob(filepath.Join(dir, "crawl", "*.jsonl"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			var rec map[string]string
			if json.Unmarshal([]byte(line), &rec) != nil || !keys[rec["id"]] {
				continue
			}
			rec["id"] = "copy-" + rec["id"]
			rec["url"] = "https://mirror.example/" + rec["id"]
			b, _ := json.Marshal(rec)
			copies.Write(append(b, '\n'))
		}
	}
	if copies.Len() == 0 {
		t.Fatal("no copies written")
	}
	if err := os.WriteFile(filepath.Join(dir, "crawl", "part-99.jsonl"), copies.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(run, filepath.Join(dir, "run-1")); err != nil {
		t.Fatal(err)
	}
	r, err := pipelines.ParseRecipe([]byte(testRecipe), dir)
	if err != nil {
		t.Fatal(err)
	}
	if w := TakedownListWarning(r); !strings.Contains(w, TakedownListFile) || !strings.Contains(w, "crawl") {
		t.Errorf("warning %q", w)
	}
	run2 := runPipeline(t, dir, testRecipe)
	ix, err := Open(context.Background(), run2)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	var kept, copiesDropped int
	for _, l := range allDocs(t, ix) {
		d := eventOf(l, "dedup")
		if d == nil {
			continue // dropped by the filter
		}
		orig := strings.TrimPrefix(l.ID, "crawl/copy-")
		isCopy := orig != l.ID
		if isCopy {
			orig = "crawl/" + orig
		}
		if reached[orig] {
			if d.Kept || !strings.HasPrefix(d.Reason, "dedup:") || !taken[d.DupOf] {
				t.Errorf("%s (taken down as %s) in the later run: %+v", l.ID, orig, d)
			}
			if !strings.Contains(l.Status, d.DupOf+" was taken down") {
				t.Errorf("%s: lineage status %q does not say why", l.ID, l.Status)
			}
			if isCopy {
				copiesDropped++
			}
			continue
		}
		if d.Kept {
			kept++
		}
	}
	if copiesDropped == 0 {
		t.Fatal("no copy at another URL reached dedup")
	}
	if kept == 0 {
		t.Fatal("the later run kept nothing: the store dropped more than the takedown")
	}
}
