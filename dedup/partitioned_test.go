package dedup

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

// sharedURLChains is the chain corpus with URLs, some shared across
// chains: text and URL clusters that cross each other.
func sharedURLChains(seed int64, chains int) []*shards.Document {
	docs := chainDocs(seed, chains, 2)
	for i, d := range docs {
		d.URL = fmt.Sprintf("https://example.com/%d", i)
		if i%7 == 0 && i > 0 {
			d.URL = docs[i-3].URL
		}
	}
	return docs
}

func writeInputs(t *testing.T, dir string, docs []*shards.Document, n int) []string {
	t.Helper()
	var ins []string
	per := (len(docs) + n - 1) / n
	for i := 0; i < n; i++ {
		in := filepath.Join(dir, fmt.Sprintf("in%d", i))
		writeInput(t, in, docs[min(i*per, len(docs)):min((i+1)*per, len(docs))], 40_000)
		ins = append(ins, in)
	}
	return ins
}

// TestClusterTasksSameBytes: the cluster step as one task and cut into 1,
// 2 and 4 partitions (components in rounds, joins, decision tasks, merge)
// gives byte-identical outputs: kept and dropped shards, stats, the
// decision files, the largest clusters and the decision summary; and the
// full Result is the same.
func TestClusterTasksSameBytes(t *testing.T) {
	chains, counts := 120, []int{0, 1, 2, 4}
	if raceEnabled {
		chains, counts = 60, []int{0, 4}
	}
	docs := sharedURLChains(11, chains)
	tmp := t.TempDir()
	ins := writeInputs(t, tmp, docs, 3)
	for _, verify := range []string{"", VerifySurvivor} {
		opt := DefaultOptions()
		opt.URL = true
		opt.Verify = verify
		var ref string
		var refRes *Result
		for _, n := range counts {
			out := filepath.Join(tmp, fmt.Sprintf("out-%q-%d", verify, n))
			st, res, err := Run(context.Background(), Config{Inputs: ins, Out: out, Options: opt, BucketTasks: 3, ClusterTasks: n,
				Workers: 2, TargetBytes: 30_000, TopClusters: 7, FullResult: true})
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				ref, refRes = out, res
				var dropped int64
				for _, c := range st.Dropped {
					dropped += c.Docs
				}
				if dropped < int64(len(docs))/3 || res.Summary.URLPairs == 0 {
					t.Fatalf("%d of %d dropped, %d URL pairs: the corpus is not what the test needs", dropped, len(docs), res.Summary.URLPairs)
				}
				continue
			}
			sameFiles(t, ref, out)
			if !reflect.DeepEqual(res, refRes) {
				a, _ := json.Marshal(res.Summary)
				b, _ := json.Marshal(refRes.Summary)
				t.Errorf("verify %q, %d cluster tasks: the result differs from the single task's (%s vs %s)", verify, n, a, b)
			}
		}
	}
}

// TestClusterTasksStore: against a store, the partitioned cluster step
// drops the same documents as the single task and commits the same store.
func TestClusterTasksStore(t *testing.T) {
	chains := 60
	if raceEnabled {
		chains = 30
	}
	docs := sharedURLChains(12, chains)
	tmp := t.TempDir()
	old := writeInputs(t, filepath.Join(tmp, "old"), docs[:len(docs)/2], 1)
	ins := writeInputs(t, tmp, docs[len(docs)/3:], 2)
	opt := DefaultOptions()
	opt.URL = true
	var ref string
	var refStats StoreStats
	for _, n := range []int{1, 3} {
		store := filepath.Join(tmp, fmt.Sprint("store", n))
		if _, _, err := Run(context.Background(), Config{Inputs: old, Out: filepath.Join(tmp, fmt.Sprint("oldout", n)), Options: opt, StorePath: store}); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(tmp, fmt.Sprint("out", n))
		_, res, err := Run(context.Background(), Config{Inputs: ins, Out: out, Options: opt, StorePath: store, ClusterTasks: n, Workers: 2, TargetBytes: 30_000})
		if err != nil {
			t.Fatal(err)
		}
		if res.Summary.StoreExact+res.Summary.StoreMinHash+res.Summary.StoreURL == 0 {
			t.Fatalf("%+v: nothing matched the store", res.Summary)
		}
		st, err := ReadStoreStats(context.Background(), store)
		if err != nil {
			t.Fatal(err)
		}
		if ref == "" {
			ref, refStats = out, st
			continue
		}
		sameFiles(t, ref, out, DecisionsName) // it names the store
		if st.Documents != refStats.Documents || st.Segments != refStats.Segments {
			t.Errorf("store after %d cluster tasks: %+v, after 1: %+v", n, st, refStats)
		}
	}
}

// TestClusterTasksResume stops a partitioned run after the components
// rounds and after the decision tasks; the rerun ends with the single
// task's files.
func TestClusterTasksResume(t *testing.T) {
	chains, points := 60, []string{"components", "decided"}
	if raceEnabled {
		chains, points = 30, points[:1]
	}
	docs := sharedURLChains(13, chains)
	tmp := t.TempDir()
	ins := writeInputs(t, tmp, docs, 2)
	cfg := func(out string, n int) Config {
		return Config{Inputs: ins, Out: out, ClusterTasks: n, Workers: 2, TargetBytes: 30_000}
	}
	ref := filepath.Join(tmp, "ref")
	if _, _, err := Run(context.Background(), cfg(ref, 1)); err != nil {
		t.Fatal(err)
	}
	for _, at := range points {
		out := filepath.Join(tmp, at)
		stop := fmt.Errorf("stopped at %s", at)
		testHook = func(p string) error {
			if p == at {
				return stop
			}
			return nil
		}
		_, _, err := Run(context.Background(), cfg(out, 3))
		testHook = nil
		if err != stop {
			t.Fatalf("stopped run: %v", err)
		}
		if _, err := os.Stat(filepath.Join(out, WorkDirName, "components", "r001", "00002", "done.json")); err != nil {
			t.Fatalf("no finished round after the stopped run: %v", err)
		}
		if _, _, err := Run(context.Background(), cfg(out, 3)); err != nil {
			t.Fatal(err)
		}
		sameFiles(t, ref, out)
	}
}
