package dedup

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
)

func TestStoreRefusesOtherSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store")
	ctx := context.Background()
	if _, err := ReadSnapshot(ctx, path, DefaultOptions(), "r1"); err != nil {
		t.Fatal(err)
	}
	opt := DefaultOptions()
	opt.NGram = 3
	if _, err := ReadSnapshot(ctx, path, opt, "r2"); err == nil || !strings.Contains(err.Error(), "was built with") {
		t.Fatalf("a store built with 5-grams opened for 3-grams: %v", err)
	}
}

// TestStoreRefusesFormat1 opens a store made by the smelt before the
// segments (a Badger database at the top level, keyed by ids): refused
// with a clear message rather than silently taken for an empty store.
func TestStoreRefusesFormat1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store")
	db, err := badger.Open(badger.DefaultOptions(path).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := ReadSnapshot(context.Background(), path, DefaultOptions(), "r"); err == nil || !strings.Contains(err.Error(), "earlier smelt") {
		t.Fatalf("format-1 store: %v", err)
	}
	if _, err := PlanSnapshot(path, DefaultOptions(), "r"); err == nil {
		t.Fatal("PlanSnapshot took a format-1 store for a new one")
	}
}

// runStore runs dedup of docs (one input directory) against store into a
// new output and returns the kept and dropped documents.
func runStore(t *testing.T, docs []*shards.Document, store string) (*Result, []*shards.Document, []*shards.Document) {
	t.Helper()
	dir := t.TempDir()
	writeInput(t, filepath.Join(dir, "in"), docs, 0)
	out := filepath.Join(dir, "out")
	_, res, err := Run(context.Background(), Config{Inputs: []string{filepath.Join(dir, "in")}, Out: out, StorePath: store, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	return res, testutil.ReadDocs(t, out), testutil.ReadDocs(t, filepath.Join(out, shards.DroppedDir))
}

// TestStoreIDIsData is the first bug of issue 13's store: records keyed by
// the user's id let a later, unrelated document with the same id overwrite
// the earlier one, and a near copy of the earlier one was then kept.
func TestStoreIDIsData(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	r := rand.New(rand.NewSource(31))
	a := strings.Join(randomWords(r, 200), " ")
	b := strings.Join(randomWords(r, 200), " ")
	runStore(t, []*shards.Document{{ID: "X", Source: "web", Text: a}}, store)
	// An unrelated document under the same id: kept, and stored too.
	_, kept, _ := runStore(t, []*shards.Document{{ID: "X", Source: "web", Text: b}}, store)
	if len(kept) != 1 {
		t.Fatalf("an unrelated document with a stored id was dropped")
	}
	w := strings.Fields(a)
	w[100] = "recaptured"
	nearA := strings.Join(w, " ")
	res, kept, dropped := runStore(t, []*shards.Document{{ID: "Y", Source: "web", Text: nearA}, {ID: "Z", Source: "web", Text: b}}, store)
	if len(kept) != 0 || len(dropped) != 2 {
		t.Fatalf("near copy of the first X and copy of the second X: %d kept, %d dropped; want both dropped (%+v)", len(kept), len(dropped), res.Summary)
	}
	for _, d := range dropped {
		if d.Drop.DupOf != "X" {
			t.Errorf("%s dropped as duplicate of %q, want X", d.ID, d.Drop.DupOf)
		}
	}
	if res.Summary.StoreDocuments != 2 || res.Summary.StoreExact != 1 || res.Summary.StoreMinHash != 1 {
		t.Errorf("store counters %+v: want 2 stored, 1 exact, 1 MinHash match (each document once)", res.Summary)
	}
}

// crossRun makes two crawls that share shared documents (same texts, other
// ids) and have others of their own.
func crossRun(shared int) (a, b []*shards.Document) {
	r := rand.New(rand.NewSource(41))
	for i := 0; i < shared; i++ {
		text := strings.Join(randomWords(r, 150), " ")
		a = append(a, &shards.Document{ID: fmt.Sprintf("a-shared-%d", i), Source: "web", Text: text})
		b = append(b, &shards.Document{ID: fmt.Sprintf("b-shared-%d", i), Source: "web", Text: text})
	}
	for i := 0; i < 40; i++ {
		a = append(a, &shards.Document{ID: fmt.Sprintf("a-own-%d", i), Source: "web", Text: strings.Join(randomWords(r, 150), " ")})
		b = append(b, &shards.Document{ID: fmt.Sprintf("b-own-%d", i), Source: "web", Text: strings.Join(randomWords(r, 150), " ")})
	}
	return a, b
}

func keptTexts(t *testing.T, out string) map[string]bool {
	t.Helper()
	m := map[string]bool{}
	for _, d := range testutil.ReadDocs(t, out) {
		m[d.Text] = true
	}
	return m
}

// TestStoreStaleDecision is the second bug: a run killed after its decision
// was saved, resumed after another run committed to the same store, reused
// the stale decision, and 21 cross-run duplicates survived in both runs.
func TestStoreStaleDecision(t *testing.T) {
	tmp := t.TempDir()
	store := filepath.Join(tmp, "store")
	da, db := crossRun(21)
	inA, inB := filepath.Join(tmp, "inA"), filepath.Join(tmp, "inB")
	writeInput(t, inA, da, 0)
	writeInput(t, inB, db, 0)
	cfgA := Config{Inputs: []string{inA}, Out: filepath.Join(tmp, "outA"), StorePath: store, Workers: 2}
	cfgB := Config{Inputs: []string{inB}, Out: filepath.Join(tmp, "outB"), StorePath: store, Workers: 2}
	// A decides, then "dies" before its commit.
	errKilled := errors.New("killed")
	testHook = func(p string) error {
		if p == "clustered" {
			return errKilled
		}
		return nil
	}
	_, _, err := Run(context.Background(), cfgA)
	testHook = nil
	if !errors.Is(err, errKilled) {
		t.Fatalf("run A: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfgA.Out, WorkDirName, "cluster", clusterDone)); err != nil {
		t.Fatalf("run A saved no decision: %v", err)
	}
	// B runs and commits meanwhile; then A resumes.
	if _, _, err := Run(context.Background(), cfgB); err != nil {
		t.Fatal(err)
	}
	_, res, err := Run(context.Background(), cfgA)
	if err != nil {
		t.Fatal(err)
	}
	ka, kb := keptTexts(t, cfgA.Out), keptTexts(t, cfgB.Out)
	both := 0
	for text := range ka {
		if kb[text] {
			both++
		}
	}
	if both != 0 || res.Summary.StoreExact != 21 {
		t.Errorf("%d documents kept by both runs (store exact matches %d): the resumed run reused a stale decision", both, res.Summary.StoreExact)
	}
}

// TestStoreConcurrentRuns runs three dedups into one store at once: they
// all read it while others append, a run whose snapshot went stale decides
// again, and no text is kept by two of them.
func TestStoreConcurrentRuns(t *testing.T) {
	tmp := t.TempDir()
	store := filepath.Join(tmp, "store")
	r := rand.New(rand.NewSource(51))
	var shared []string
	for i := 0; i < 15; i++ {
		shared = append(shared, strings.Join(randomWords(r, 150), " "))
	}
	var cfgs []Config
	for k := 0; k < 3; k++ {
		var docs []*shards.Document
		for i, text := range shared {
			docs = append(docs, &shards.Document{ID: fmt.Sprintf("%d-s%d", k, i), Source: "web", Text: text})
		}
		for i := 0; i < 30; i++ {
			docs = append(docs, &shards.Document{ID: fmt.Sprintf("%d-o%d", k, i), Source: "web", Text: strings.Join(randomWords(r, 150), " ")})
		}
		in := filepath.Join(tmp, fmt.Sprint("in", k))
		writeInput(t, in, docs, 0)
		cfgs = append(cfgs, Config{Inputs: []string{in}, Out: filepath.Join(tmp, fmt.Sprint("out", k)), StorePath: store, Workers: 1})
	}
	var wg sync.WaitGroup
	errs := make([]error, len(cfgs))
	for k := range cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[k] = Run(context.Background(), cfgs[k])
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	for k, c := range cfgs {
		if errs[k] != nil {
			t.Fatalf("run %d: %v", k, errs[k])
		}
		for text := range keptTexts(t, c.Out) {
			seen[text]++
		}
	}
	for _, text := range shared {
		if seen[text] != 1 {
			t.Errorf("a shared text is kept by %d runs, want exactly 1", seen[text])
		}
	}
	ss, err := ReadStoreStats(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	if ss.Segments != 3 || ss.Documents != 15+3*30 {
		t.Errorf("store %+v, want 3 segments of %d documents in all", ss, 15+3*30)
	}
}

// TestRunHelperProcess is the child of TestRunSurvivesKill9: it runs dedup
// with a store and kills itself (SIGKILL) at the point named in
// SMELT_DEDUP_KILL_AT.
func TestRunHelperProcess(t *testing.T) {
	dir := os.Getenv("SMELT_DEDUP_RUN_CHILD")
	if dir == "" {
		t.Skip("helper process for TestRunSurvivesKill9")
	}
	at := os.Getenv("SMELT_DEDUP_KILL_AT")
	testHook = func(p string) error {
		if p == at {
			fmt.Println("killing at", p)
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		return nil
	}
	cfg := killConfig(dir)
	cfg.ClusterTasks, _ = strconv.Atoi(os.Getenv("SMELT_DEDUP_CLUSTER_TASKS"))
	_, _, err := Run(context.Background(), cfg)
	fmt.Println("error:", err)
	os.Exit(3)
}

func killConfig(d string) Config {
	return Config{Inputs: []string{filepath.Join(d, "in1"), filepath.Join(d, "in2")}, Out: filepath.Join(d, "out"),
		StorePath: filepath.Join(d, "store"), Workers: 2, BucketTasks: 3, TargetBytes: 40_000}
}

// TestRunSurvivesKill9 kills a dedup run with a store (a store holding an
// earlier crawl) with SIGKILL in each phase, and checks that the rerun ends
// with the same output files as an uninterrupted run, and the store with
// the same documents, so that a third crawl is deduplicated the same way.
func TestRunSurvivesKill9(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	// Every phase under SMELT_THOROUGH; otherwise one point in each of
	// the three parts of a run (the work files, the store's segment, the
	// routing), so that the README's test command stays short under -race.
	points := []string{"sketched", "bucketed", "clustered", "segment-written", "segment-renamed", "committed", "route"}
	if !testutil.IsThorough() {
		points = []string{"bucketed", "segment-renamed", "route"}
	}
	runSurvivesKill9(t, 0, points)
}

// TestClusterTasksSurvivesKill9 is TestRunSurvivesKill9 with the cluster
// step cut into 3 partitions, killed after its rounds, its decision tasks
// and its merge: the rerun ends with the single task's files.
func TestClusterTasksSurvivesKill9(t *testing.T) {
	skipUnderRace(t) // TestClusterTasksResume stops and resumes one under -race
	runSurvivesKill9(t, 3, []string{"components", "decided", "clustered", "committed"})
}

func runSurvivesKill9(t *testing.T, clusterTasks int, points []string) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	earlier := genCorpus(7, 60, "e", "web")
	s := genCorpus(8, 120, "k", "web")
	// Re-captures of the earlier crawl.
	for i, d := range earlier.docs[:20] {
		c := *d
		c.ID = fmt.Sprintf("re%02d", i)
		s.docs = append(s.docs, &c)
	}
	setup := func(d string) {
		half := len(s.docs) / 2
		writeInput(t, filepath.Join(d, "in1"), s.docs[:half], 20_000)
		writeInput(t, filepath.Join(d, "in2"), s.docs[half:], 20_000)
		writeInput(t, filepath.Join(d, "old"), earlier.docs, 0)
		if _, _, err := Run(context.Background(), Config{Inputs: []string{filepath.Join(d, "old")}, Out: filepath.Join(d, "oldout"),
			StorePath: filepath.Join(d, "store")}); err != nil {
			t.Fatal(err)
		}
	}
	ref := t.TempDir()
	setup(ref)
	if _, _, err := Run(context.Background(), killConfig(ref)); err != nil {
		t.Fatal(err)
	}
	refStats, err := ReadStoreStats(context.Background(), filepath.Join(ref, "store"))
	if err != nil {
		t.Fatal(err)
	}
	third := genCorpus(9, 30, "t", "web")
	third.docs = append(third.docs, s.docs[:10]...)
	_, refThird, _ := runStore(t, third.docs, filepath.Join(ref, "store"))
	for _, at := range points {
		t.Run(at, func(t *testing.T) {
			dir := t.TempDir()
			setup(dir)
			cmd := exec.Command(os.Args[0], "-test.run=^TestRunHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), "SMELT_DEDUP_RUN_CHILD="+dir, "SMELT_DEDUP_KILL_AT="+at, "SMELT_DEDUP_CLUSTER_TASKS="+strconv.Itoa(clusterTasks))
			out, _ := cmd.CombinedOutput()
			if !strings.Contains(string(out), "killing at "+at) {
				t.Fatalf("child was not killed at %s:\n%s", at, out)
			}
			cfg := killConfig(dir)
			cfg.ClusterTasks = clusterTasks
			if _, _, err := Run(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			sameFiles(t, filepath.Join(ref, "out"), filepath.Join(dir, "out"), DecisionsName)
			st, err := ReadStoreStats(context.Background(), filepath.Join(dir, "store"))
			if err != nil {
				t.Fatal(err)
			}
			if st.Documents != refStats.Documents || st.Segments != refStats.Segments {
				t.Errorf("store after kill at %s: %+v, uninterrupted: %+v", at, st, refStats)
			}
			_, kept, _ := runStore(t, third.docs, filepath.Join(dir, "store"))
			if len(kept) != len(refThird) {
				t.Errorf("a third crawl keeps %d against the resumed store, %d against the uninterrupted one", len(kept), len(refThird))
			}
		})
	}
}

// TestStoreOtherPartitioning commits a store with 3 bucket partitions and
// deduplicates against it with 1, 5 and 8: a bucket task reads the
// segment files whose key ranges overlap its own.
func TestStoreOtherPartitioning(t *testing.T) {
	tmp := t.TempDir()
	store := filepath.Join(tmp, "store")
	first := genCorpus(91, 60, "s", "web")
	writeInput(t, filepath.Join(tmp, "in1"), first.docs, 0)
	if _, _, err := Run(context.Background(), Config{Inputs: []string{filepath.Join(tmp, "in1")}, Out: filepath.Join(tmp, "out1"), StorePath: store, BucketTasks: 3}); err != nil {
		t.Fatal(err)
	}
	kept := testutil.ReadDocs(t, filepath.Join(tmp, "out1"))
	var again []*shards.Document
	for i, d := range kept {
		c := *d
		c.ID = fmt.Sprintf("again-%d", i)
		again = append(again, &c)
	}
	writeInput(t, filepath.Join(tmp, "in2"), again, 0)
	for _, parts := range []int{1, 5, 8} {
		out := filepath.Join(tmp, fmt.Sprint("out2-", parts))
		// The same run each time (partitions are not part of its
		// identity): it decides against what came before its own segment.
		_, res, err := Run(context.Background(), Config{Inputs: []string{filepath.Join(tmp, "in2")}, Out: out, StorePath: store, BucketTasks: parts})
		if err != nil {
			t.Fatal(err)
		}
		if res.Summary.Dropped != int64(len(again)) || res.Summary.StoreExact != int64(len(again)) {
			t.Errorf("%d partitions against a store cut in 3: %d of %d re-ingested documents found (%+v)", parts, res.Summary.Dropped, len(again), res.Summary)
		}
	}
}
