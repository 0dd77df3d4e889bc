package dedup

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// labelBytes runs the components step with parts tasks and returns every
// (node, label) record, sorted by node, 16 bytes each, and the rounds.
func labelBytes(t testing.TB, pairs []string, parts int) ([]byte, int) {
	b, final, _ := labelBytesMax(t, pairs, parts)
	return b, final
}

// labelBytesMax is labelBytes and the most edges any task held.
func labelBytesMax(t testing.TB, pairs []string, parts int) ([]byte, int, int64) {
	t.Helper()
	ctx, dir := context.Background(), t.TempDir()
	final, err := Components(ctx, pairs, dir, parts, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	var most int64
	for r := 1; r <= final; r++ {
		for p := 0; p < parts; p++ {
			d, err := readCCDone(ccTaskDir(dir, r, p))
			if err != nil {
				t.Fatal(err)
			}
			most = max(most, d.EdgesIn)
		}
	}
	var all []ccEdge
	for p := 0; p < parts; p++ {
		last := Ref(0)
		if err := ComponentLabels(ctx, dir, final, p, parts, func(n, l Ref) {
			if n < last || l >= n {
				t.Fatalf("partition %d: label %v of %v out of order", p, l, n)
			}
			last = n
			all = append(all, ccEdge{n, l})
		}); err != nil {
			t.Fatal(err)
		}
	}
	slices.SortFunc(all, func(x, y ccEdge) int { return cmpRef(x.u, y.u) })
	var buf bytes.Buffer
	var b [16]byte
	for _, e := range all {
		binary.LittleEndian.PutUint64(b[0:], uint64(e.u))
		binary.LittleEndian.PutUint64(b[8:], uint64(e.v))
		buf.Write(b[:])
	}
	return buf.Bytes(), final, most
}

// ufLabels is the reference: union-find over the same pair files, each
// node labelled with its component's smallest reference (nodes that are
// their own label left out, as in ComponentLabels).
func ufLabels(t testing.TB, pairs []string) []byte {
	t.Helper()
	var uf unionFind
	node := map[Ref]int{}
	nodeOf := func(r Ref) int {
		if n, ok := node[r]; ok {
			return n
		}
		node[r] = uf.add(r)
		return node[r]
	}
	for _, p := range pairs {
		if err := readPairs(context.Background(), p, func(a, b Ref) { uf.union(nodeOf(a), nodeOf(b)) }); err != nil {
			t.Fatal(err)
		}
	}
	minOf := map[int]Ref{}
	for r, n := range node {
		root := uf.find(n)
		if m, ok := minOf[root]; !ok || r < m {
			minOf[root] = r
		}
	}
	var all []ccEdge
	for r, n := range node {
		if m := minOf[uf.find(n)]; m != r {
			all = append(all, ccEdge{r, m})
		}
	}
	slices.SortFunc(all, func(x, y ccEdge) int { return cmpRef(x.u, y.u) })
	var buf bytes.Buffer
	var b [16]byte
	for _, e := range all {
		binary.LittleEndian.PutUint64(b[0:], uint64(e.u))
		binary.LittleEndian.PutUint64(b[8:], uint64(e.v))
		buf.Write(b[:])
	}
	return buf.Bytes()
}

func writePairFile(t testing.TB, path string, pairs [][2]Ref) {
	t.Helper()
	w, err := newPairWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pairs {
		if err := w.write(p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.commit(); err != nil {
		t.Fatal(err)
	}
}

// TestComponentsRandomGraphs: long paths in shuffled reference order (the
// worst case for rounds), stars, cycles, stored references and duplicate
// and self pairs, cut into 1, 2 and 5 tasks: byte-identical labels, equal
// to union-find's.
func TestComponentsRandomGraphs(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	var pairs [][2]Ref
	ref := func() Ref {
		x := MakeRef(r.Intn(50), r.Int63n(1<<20))
		if r.Intn(10) == 0 {
			x |= refStored
		}
		return x
	}
	for c := 0; c < 40; c++ {
		n := 2 + r.Intn(300)
		nodes := make([]Ref, n)
		for i := range nodes {
			nodes[i] = ref()
		}
		for i := 1; i < n; i++ {
			switch c % 3 {
			case 0: // a path
				pairs = append(pairs, [2]Ref{nodes[i-1], nodes[i]})
			case 1: // a star around a random member
				pairs = append(pairs, [2]Ref{nodes[r.Intn(n)], nodes[i]})
			default: // a random tree plus a cycle edge
				pairs = append(pairs, [2]Ref{nodes[r.Intn(i)], nodes[i]})
			}
		}
		pairs = append(pairs, [2]Ref{nodes[0], nodes[n-1]}, [2]Ref{nodes[1], nodes[1]}, [2]Ref{nodes[0], nodes[1]})
	}
	r.Shuffle(len(pairs), func(a, b int) { pairs[a], pairs[b] = pairs[b], pairs[a] })
	dir := t.TempDir()
	files := []string{filepath.Join(dir, "a.bin"), filepath.Join(dir, "b.bin")}
	writePairFile(t, files[0], pairs[:len(pairs)/3])
	writePairFile(t, files[1], pairs[len(pairs)/3:])
	want := ufLabels(t, files)
	for _, parts := range []int{1, 2, 5} {
		got, rounds := labelBytes(t, files, parts)
		if !bytes.Equal(got, want) {
			t.Fatalf("%d tasks: %d label bytes, union-find %d: the components differ", parts, len(got), len(want))
		}
		t.Logf("%d tasks: %d labelled nodes in %d rounds", parts, len(got)/16, rounds)
	}
}

// TestComponentsEqualClusterTask: on the chain corpus of
// TestChainsIndependentOfOrder, the components step with 1, 2 and 5 tasks
// gives byte-identical labels, and its components are the single cluster
// task's clusters.
func TestComponentsEqualClusterTask(t *testing.T) {
	chains := 600
	if testing.Short() || raceEnabled {
		chains = 200
	}
	docs := chainDocs(5, chains, 2)
	opt := DefaultOptions()
	opt.URL = true
	dir := t.TempDir()
	var ins []string
	per := (len(docs) + 2) / 3
	for i := 0; i < 3; i++ {
		in := filepath.Join(dir, fmt.Sprintf("in%d", i))
		writeInput(t, in, docs[min(i*per, len(docs)):min((i+1)*per, len(docs))], 0)
		ins = append(ins, in)
	}
	res := stagedDecide(t, ins, opt, 4)
	// stagedDecide's work directory is its own: rebuild the pair files
	// the same way to feed the components step.
	ctx, work := context.Background(), t.TempDir()
	var sketches, buckets []string
	for i, in := range ins {
		d := filepath.Join(work, "sketch", taskName(i))
		if _, err := SketchTask(ctx, SketchConfig{Input: in, Task: i, Dir: d, Options: opt, Parts: 4, Workers: 2}); err != nil {
			t.Fatal(err)
		}
		sketches = append(sketches, d)
	}
	for p := 0; p < 4; p++ {
		d := filepath.Join(work, "bucket", taskName(p))
		if _, err := BucketTask(ctx, BucketConfig{Sketches: sketches, Part: p, Parts: 4, Dir: d, Options: opt}); err != nil {
			t.Fatal(err)
		}
		buckets = append(buckets, d)
	}
	offsets := make([]int64, len(sketches)+1)
	for i, d := range sketches {
		info, err := readSketchInfo(d)
		if err != nil {
			t.Fatal(err)
		}
		offsets[i+1] = offsets[i] + info.Rows
	}
	pairs := ComponentPairFiles(buckets)
	one, _, most1 := labelBytesMax(t, pairs, 1)
	if !bytes.Equal(one, ufLabels(t, pairs)) {
		t.Fatal("components differ from union-find over the same pairs")
	}
	prev := most1
	for _, parts := range []int{2, 5} {
		got, rounds, most := labelBytesMax(t, pairs, parts)
		if !bytes.Equal(got, one) {
			t.Fatalf("%d tasks: labels differ from 1 task's", parts)
		}
		// A task holds its partition's edges: the most any task holds
		// falls with the tasks (within 1.5x of an even share).
		if most >= prev || most > most1*3/2/int64(parts) {
			t.Fatalf("%d tasks: a task held %d edges (1 task: %d)", parts, most, most1)
		}
		prev = most
		t.Logf("%d tasks: %d rounds, at most %d edges a task (1 task: %d)", parts, rounds, most, most1)
	}
	// Components as sets of input positions, against the cluster task's.
	pos := func(r Ref) int64 { return offsets[r.Task()] + r.Row() }
	byLabel := map[int64][]int64{}
	for i := 0; i < len(one); i += 16 {
		n, l := Ref(binary.LittleEndian.Uint64(one[i:])), Ref(binary.LittleEndian.Uint64(one[i+8:]))
		if len(byLabel[pos(l)]) == 0 {
			byLabel[pos(l)] = []int64{pos(l)}
		}
		byLabel[pos(l)] = append(byLabel[pos(l)], pos(n))
	}
	key := func(m []int64) string {
		m = slices.Clone(m)
		slices.Sort(m)
		var sb strings.Builder
		for _, p := range m {
			sb.WriteString(strconv.FormatInt(p, 10) + ",")
		}
		return sb.String()
	}
	var got, want []string
	for _, m := range byLabel {
		got = append(got, key(m))
	}
	for _, c := range res.Clusters {
		want = append(want, key(c.Members))
	}
	slices.Sort(got)
	slices.Sort(want)
	if len(want) < chains/2 {
		t.Fatalf("%d clusters: the corpus is not what the test needs", len(want))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%d components, the cluster task %d clusters: they differ", len(got), len(want))
	}
	t.Logf("%d clusters, the same in both", len(want))
}

// TestComponentsTaskProcess runs one components task named by
// SMELT_CC_TASK ("DIR ROUND PART PARTS PAIRLIST"), so that a parent can
// measure its RSS with /usr/bin/time; it skips otherwise.
func TestComponentsTaskProcess(t *testing.T) {
	spec := os.Getenv("SMELT_CC_TASK")
	if spec == "" {
		t.Skip("SMELT_CC_TASK not set (a helper for measuring one components task)")
	}
	f := strings.Fields(spec)
	round, _ := strconv.Atoi(f[1])
	part, _ := strconv.Atoi(f[2])
	parts, _ := strconv.Atoi(f[3])
	list, err := os.ReadFile(f[4])
	if err != nil {
		t.Fatal(err)
	}
	d, err := ComponentsTask(context.Background(), CCConfig{Pairs: strings.Fields(string(list)), Dir: f[0], Round: round, Part: part, Parts: parts})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("cc round %d part %d/%d: in %d out %d stars %v final %d\n", round, part, parts, d.EdgesIn, d.EdgesOut, d.InputStars, d.Final)
}

// TestClusterTaskProcess runs the single cluster task over a run's work
// directory named by SMELT_CLUSTER_TASK ("WORK OUT"; default options), so
// that a parent can measure its RSS with /usr/bin/time; it skips
// otherwise.
func TestClusterTaskProcess(t *testing.T) {
	spec := os.Getenv("SMELT_CLUSTER_TASK")
	if spec == "" {
		t.Skip("SMELT_CLUSTER_TASK not set (a helper for measuring the cluster task)")
	}
	f := strings.Fields(spec)
	sketches, _ := filepath.Glob(filepath.Join(f[0], "sketch", "*"))
	buckets, _ := filepath.Glob(filepath.Join(f[0], "bucket", "*"))
	cfg := ClusterConfig{Sketches: sketches, Buckets: buckets, Dir: f[1], Options: DefaultOptions()}
	if len(f) == 4 { // "WORK OUT JOINROOT PART": one partition's components
		joins, _ := filepath.Glob(filepath.Join(f[2], "*"))
		q, _ := strconv.Atoi(f[3])
		cfg.TextPairs, cfg.URLPairs = JoinedPairs(joins, q)
	}
	res, err := ClusterTask(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("cluster: %d clusters, %d dropped\n", res.Summary.Clusters, res.Summary.Dropped)
}

// TestPartitionedDecisionsEqualClusterTask: the components in 3 tasks, the
// join, and one cluster task per partition deciding only its components
// (verify on, URL dedup on) give every document the decision the single
// cluster task gives it.
func TestPartitionedDecisionsEqualClusterTask(t *testing.T) {
	docs := chainDocs(7, 200, 2)
	for i, d := range docs {
		d.URL = fmt.Sprintf("https://example.com/%d", i)
		if i%7 == 0 && i > 0 { // some shared URLs, across chains too
			d.URL = docs[i-3].URL
		}
	}
	opt := DefaultOptions()
	opt.URL = true
	opt.Verify = VerifySurvivor
	ctx, work := context.Background(), t.TempDir()
	var sketches, buckets []string
	per := (len(docs) + 2) / 3
	for i := 0; i < 3; i++ {
		in := filepath.Join(work, fmt.Sprintf("in%d", i))
		writeInput(t, in, docs[min(i*per, len(docs)):min((i+1)*per, len(docs))], 0)
		d := filepath.Join(work, "sketch", taskName(i))
		if _, err := SketchTask(ctx, SketchConfig{Input: in, Task: i, Dir: d, Options: opt, Parts: 2, Workers: 2}); err != nil {
			t.Fatal(err)
		}
		sketches = append(sketches, d)
	}
	for p := 0; p < 2; p++ {
		d := filepath.Join(work, "bucket", taskName(p))
		if _, err := BucketTask(ctx, BucketConfig{Sketches: sketches, Part: p, Parts: 2, Dir: d, Options: opt}); err != nil {
			t.Fatal(err)
		}
		buckets = append(buckets, d)
	}
	one, err := ClusterTask(ctx, ClusterConfig{Sketches: sketches, Buckets: buckets, Dir: filepath.Join(work, "cluster"), Options: opt, Full: true})
	if err != nil {
		t.Fatal(err)
	}
	const parts = 3
	cc := filepath.Join(work, "cc")
	final, err := Components(ctx, ComponentPairFiles(buckets), cc, parts, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	var joins []string
	for p := 0; p < parts; p++ {
		j := filepath.Join(work, "join", taskName(p))
		if err := ComponentsJoinTask(ctx, CCJoinConfig{Buckets: buckets, Dir: cc, Final: final, Part: p, Parts: parts, Out: j}); err != nil {
			t.Fatal(err)
		}
		joins = append(joins, j)
	}
	got := map[int64]Decision{}
	for q := 0; q < parts; q++ {
		text, url := JoinedPairs(joins, q)
		res, err := ClusterTask(ctx, ClusterConfig{Sketches: sketches, Buckets: buckets, Dir: filepath.Join(work, "decide", taskName(q)),
			Options: opt, Full: true, TextPairs: text, URLPairs: url})
		if err != nil {
			t.Fatal(err)
		}
		for pos, d := range res.Decisions {
			if _, dup := got[pos]; dup {
				t.Fatalf("document %d decided by two partitions", pos)
			}
			got[pos] = d
		}
	}
	strip := func(d Decision) Decision { d.Cluster, d.First, d.Size = 0, false, 0; return d }
	if len(got) != len(one.Decisions) {
		t.Fatalf("%d documents decided in partitions, %d by the single task", len(got), len(one.Decisions))
	}
	dropped := 0
	for pos, d := range one.Decisions {
		if strip(got[pos]) != strip(d) {
			t.Fatalf("document %d: %+v in partitions, %+v by the single task", pos, got[pos], d)
		}
		if d.Reason != "" {
			dropped++
		}
	}
	if dropped < 200 {
		t.Fatalf("%d dropped: the corpus is not what the test needs", dropped)
	}
	if one.Summary.URLPairs == 0 {
		t.Fatal("no URL pairs: the corpus is not what the test needs")
	}
	t.Logf("%d decisions (%d dropped, %d URL pairs) the same in %d partitions as in one task", len(got), dropped, one.Summary.URLPairs, parts)
}

// TestComponentsJoinProcess runs one join task named by SMELT_CC_JOIN
// ("WORK CCDIR FINAL PART PARTS OUT"), for /usr/bin/time; it skips
// otherwise.
func TestComponentsJoinProcess(t *testing.T) {
	spec := os.Getenv("SMELT_CC_JOIN")
	if spec == "" {
		t.Skip("SMELT_CC_JOIN not set (a helper for measuring one join task)")
	}
	f := strings.Fields(spec)
	buckets, _ := filepath.Glob(filepath.Join(f[0], "bucket", "*"))
	final, _ := strconv.Atoi(f[2])
	part, _ := strconv.Atoi(f[3])
	parts, _ := strconv.Atoi(f[4])
	if err := ComponentsJoinTask(context.Background(), CCJoinConfig{Buckets: buckets, Dir: f[1], Final: final, Part: part, Parts: parts, Out: f[5]}); err != nil {
		t.Fatal(err)
	}
}
