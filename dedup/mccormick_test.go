package dedup

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
)

// sharedData is the real test data directory, beside the repository.
var sharedData = filepath.Join("..", "..", "shared", "data")

// loadMcCormick reads one of the McCormick plagiarism sets: one article per
// line "tNNN text", and the labelled duplicate pairs.
func loadMcCormick(t testing.TB, n int) ([]*shards.Document, map[[2]string]bool) {
	t.Helper()
	dir := filepath.Join(sharedData, "dedup")
	train := filepath.Join(dir, fmt.Sprintf("mccormick_articles_%d.train", n))
	if _, err := os.Stat(train); err != nil {
		t.Skipf("real test data not available (%v): needs ../shared/data beside the repository", err)
	}
	f, err := os.Open(train)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var docs []*shards.Document
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		id, text, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		docs = append(docs, &shards.Document{ID: id, Source: "mccormick", Text: text})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	tb, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("mccormick_articles_%d.truth", n)))
	if err != nil {
		t.Fatal(err)
	}
	truth := map[[2]string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(tb)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("truth line %q", line)
		}
		truth[pairKey(f[0], f[1])] = true
	}
	if len(docs) != n || len(truth) == 0 {
		t.Fatalf("%s: %d documents, %d truth pairs", train, len(docs), len(truth))
	}
	return docs, truth
}

func pairKey(a, b string) [2]string {
	if b < a {
		a, b = b, a
	}
	return [2]string{a, b}
}

// runDedup runs the staged dedup (Run: sketch, bucket, cluster, route)
// over docs cut into three input directories and five bucket partitions,
// and the in-memory reference over the same documents; it fails the test
// when their clusters or survivors differ.
func runDedup(t testing.TB, docs []*shards.Document, opt Options) (*memDeduper, *Result) {
	t.Helper()
	res := stagedDedup(t, docs, opt, 3, 5, "")
	mem, d, err := memDedup(docs, opt)
	if err != nil {
		t.Fatal(err)
	}
	requireSameClusters(t, docs, res, mem)
	return d, res
}

// stagedDedup writes docs into inputs input directories and runs Run with
// parts bucket partitions (and store, if set) into a new output.
func stagedDedup(t testing.TB, docs []*shards.Document, opt Options, inputs, parts int, store string) *Result {
	t.Helper()
	dir := t.TempDir()
	var ins []string
	per := (len(docs) + inputs - 1) / inputs
	for i := 0; i < inputs; i++ {
		in := filepath.Join(dir, fmt.Sprintf("in%d", i))
		writeInput(t, in, docs[min(i*per, len(docs)):min((i+1)*per, len(docs))], 0)
		ins = append(ins, in)
	}
	_, res, err := Run(context.Background(), Config{Inputs: ins, Out: filepath.Join(dir, "out"), Options: opt,
		BucketTasks: parts, Workers: 2, StorePath: store, FullResult: true})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// stagedDecide runs the sketch, bucket and cluster steps (no routing) over
// the input directories and returns the decision.
func stagedDecide(t testing.TB, inputs []string, opt Options, parts int) *Result {
	t.Helper()
	if err := opt.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, work := context.Background(), t.TempDir()
	var sketches, buckets []string
	for i, in := range inputs {
		d := filepath.Join(work, "sketch", taskName(i))
		if _, err := SketchTask(ctx, SketchConfig{Input: in, Task: i, Dir: d, Options: opt, Parts: parts, Workers: 2}); err != nil {
			t.Fatal(err)
		}
		sketches = append(sketches, d)
	}
	for p := 0; p < parts; p++ {
		d := filepath.Join(work, "bucket", taskName(p))
		if _, err := BucketTask(ctx, BucketConfig{Sketches: sketches, Part: p, Parts: parts, Dir: d, Options: opt}); err != nil {
			t.Fatal(err)
		}
		buckets = append(buckets, d)
	}
	res, err := ClusterTask(ctx, ClusterConfig{Sketches: sketches, Buckets: buckets, Dir: filepath.Join(work, "cluster"), Options: opt, Full: true})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// requireSameClusters checks that the staged result has exactly the
// in-memory reference's clusters (as sets of documents) and survivors.
func requireSameClusters(t testing.TB, docs []*shards.Document, res *Result, mem []memCluster) {
	t.Helper()
	key := func(members []int64) string { return fmt.Sprint(members) }
	want := map[string]string{}
	for _, c := range mem {
		want[key(c.Members)] = docs[c.Survivor].ID
	}
	got := map[string]string{}
	for _, c := range res.Clusters {
		got[key(c.Members)] = c.Survivor
	}
	bad := 0
	for k, s := range want {
		if g, ok := got[k]; !ok || g != s {
			bad++
			if bad < 5 {
				t.Errorf("in-memory cluster %s (survivor %s): staged has survivor %q (found %v)", k, s, g, ok)
			}
		}
	}
	if len(got) != len(want) || bad > 0 {
		t.Errorf("staged dedup: %d clusters, in-memory: %d, %d differ", len(got), len(want), bad)
	}
}

// foundPairs lists every pair of documents that share a cluster.
func foundPairs(docs []*shards.Document, res *Result) map[[2]string]bool {
	out := map[[2]string]bool{}
	for _, c := range res.Clusters {
		for a := range c.Members {
			for b := a + 1; b < len(c.Members); b++ {
				out[pairKey(docs[c.Members[a]].ID, docs[c.Members[b]].ID)] = true
			}
		}
	}
	return out
}

func precisionRecall(found, truth map[[2]string]bool) (p, r float64, tp int) {
	for k := range found {
		if truth[k] {
			tp++
		}
	}
	p, r = 1, 1
	if len(found) > 0 {
		p = float64(tp) / float64(len(found))
	}
	if len(truth) > 0 {
		r = float64(tp) / float64(len(truth))
	}
	return p, r, tp
}

// TestMcCormickQuality is the quality bar: at the default settings,
// precision and recall of the duplicate pairs are both at least 0.95 on the
// labelled 1,000 and 2,500 article sets.
func TestMcCormickQuality(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	for _, n := range []int{1000, 2500} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			docs, truth := loadMcCormick(t, n)
			d, res := runDedup(t, docs, DefaultOptions())
			found := foundPairs(docs, res)
			p, r, tp := precisionRecall(found, truth)
			t.Logf("%d articles: %d truth pairs, %d found, %d correct: precision %.3f recall %.3f (candidates %d)",
				n, len(truth), len(found), tp, p, r, res.Summary.CandidatePairs)
			if testing.Short() {
				return
			}
			// The margin: estimated similarity of the least similar labelled
			// pair and of the most similar unlabelled one (all pairs).
			minDup, maxOther := 1.0, 0.0
			for a := range docs {
				for b := a + 1; b < len(docs); b++ {
					sa, sb := d.sigOf[a], d.sigOf[b]
					if sa < 0 || sb < 0 {
						continue
					}
					j := Jaccard(d.sig(sa), d.sig(sb))
					if truth[pairKey(docs[a].ID, docs[b].ID)] {
						minDup = min(minDup, j)
					} else {
						maxOther = max(maxOther, j)
					}
				}
			}
			t.Logf("lowest labelled-pair similarity %.3f, highest other pair %.3f", minDup, maxOther)
			if p < 0.95 || r < 0.95 {
				for k := range truth {
					if !found[k] {
						t.Logf("missed %v", k)
					}
				}
				for k := range found {
					if !truth[k] {
						t.Logf("false pair %v", k)
					}
				}
				t.Errorf("precision %.3f recall %.3f: want both >= 0.95", p, r)
			}
		})
	}
}

// TestMcCormickCurve prints precision and recall over thresholds 0.5 to 0.9
// (bands and rows derived from each threshold, and at the fixed default
// 14 x 8 banding). Run with -v to see the table. Signatures do not depend
// on the threshold, but the staged run sketches again each time.
func TestMcCormickCurve(t *testing.T) {
	// The curve is 34 staged runs over the two sets: a thoroughness run
	// (TestMcCormickQuality checks the defaults on every run).
	testutil.Thorough(t)
	type set struct {
		docs   []*shards.Document
		truth  map[[2]string]bool
		inputs []string
	}
	sets := map[int]*set{}
	for _, n := range []int{1000, 2500} {
		docs, truth := loadMcCormick(t, n)
		s := &set{docs: docs, truth: truth}
		for i, part := range [][]*shards.Document{docs[:len(docs)/2], docs[len(docs)/2:]} {
			in := filepath.Join(t.TempDir(), fmt.Sprint("in", i))
			writeInput(t, in, part, 0)
			s.inputs = append(s.inputs, in)
		}
		sets[n] = s
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n| threshold | banding | P(1000) | R(1000) | P(2500) | R(2500) |\n|---|---|---|---|---|---|\n")
	// 0.5 to 0.9 is the range; 0.2, 0.3 and 0.95 show where the
	// curve leaves 1.0 on this data.
	for _, th := range []float64{0.2, 0.3, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95} {
		for _, derived := range []bool{true, false} {
			if !derived && (th < 0.5 || th > 0.9) {
				continue
			}
			opt := DefaultOptions()
			opt.Threshold = th
			if derived {
				opt.Bands, opt.Rows = 0, 0
			}
			if err := opt.Validate(); err != nil {
				t.Fatal(err)
			}
			row := fmt.Sprintf("| %.2f | %dx%d |", th, opt.Bands, opt.Rows)
			for _, n := range []int{1000, 2500} {
				s := sets[n]
				res := stagedDecide(t, s.inputs, opt, 3)
				p, r, _ := precisionRecall(foundPairs(s.docs, res), s.truth)
				row += fmt.Sprintf(" %.3f | %.3f |", p, r)
				// docs/dedup.md's table: exact over the range.
				if th >= 0.5 && th <= 0.9 && (p < 0.999 || r < 0.999) {
					t.Errorf("threshold %.2f, %dx%d, %d articles: precision %.3f recall %.3f, want 1.000 / 1.000 as docs/dedup.md says", th, opt.Bands, opt.Rows, n, p, r)
				}
			}
			sb.WriteString(row + "\n")
		}
	}
	t.Log(sb.String())
}
