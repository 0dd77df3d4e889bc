package dedup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smelt-dev/smelt/shards"
)

// The scale benchmark (issue 13's bars): SMELT_DEDUP_SCALE=N generates N
// synthetic documents (dedup.Synthesize: 13 % near copies, 1 % sharing a
// boilerplate) in 8 shard directories and runs every task of every step as
// its own process, as Slurm would (GOMEMLIMIT 3/4 of SMELT_DEDUP_MEM,
// default 1GiB), measuring each task's peak RSS and CPU time from the OS
// (wait4's rusage); then precision and recall of the injected pairs, and,
// up to SMELT_DEDUP_SCALE_PEER documents (default 200000), the in-memory
// dedup on the same input in the same run. Run it with
//
//	SMELT_DEDUP_SCALE=200000 nice go test ./dedup -run TestScale -v -timeout 2h
//
// SMELT_DEDUP_SCALE_DIR keeps the files in that directory.

const scaleTasks, scaleParts = 8, 8

// scaleBuffer is each sketch task's record buffer (--buffer-mb 32): at 2M
// documents a task spills about 5 sorted runs.
const scaleBuffer = 32 << 20

type usage struct {
	maxRSS    int64 // bytes
	cpu, wall time.Duration
}

// runChild runs one step task in a child process of the test binary,
// started by /usr/bin/time: a child that a Go parent starts (vfork+exec)
// reports the parent's peak RSS if that is higher (Linux carries the
// parent's high-water mark into the exec'd child), so the task's own peak
// is read from a small parent's wait4, which time prints.
func runChild(t *testing.T, dir, mem string, args ...string) usage {
	t.Helper()
	if _, err := os.Stat(timeBin); err != nil {
		t.Skipf("%s is needed to measure each task's own peak RSS (apt-get install time): %v", timeBin, err)
	}
	cmd := exec.Command(timeBin, "-f", "\nscale-usage %M %U %S", os.Args[0], "-test.run=^TestScaleChild$", "-test.count=1")
	memB, err := parseMiB(mem)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), "SMELT_DEDUP_SCALE_CHILD="+strings.Join(append([]string{dir}, args...), "\x1f"),
		fmt.Sprintf("GOMEMLIMIT=%dMiB", memB*3/4), "GOMAXPROCS=2")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "child ok") {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	wall := time.Since(start)
	i := strings.LastIndex(string(out), "scale-usage ")
	var kb int64
	var user, sys float64
	if i < 0 {
		t.Fatalf("%v: no usage from %s:\n%s", args, timeBin, out)
	}
	if _, err := fmt.Sscan(string(out[i+len("scale-usage "):]), &kb, &user, &sys); err != nil {
		t.Fatalf("%v: usage %q: %v", args, out[i:], err)
	}
	return usage{maxRSS: kb << 10, cpu: time.Duration((user + sys) * float64(time.Second)), wall: wall}
}

// timeBin is GNU time, the small parent each measured task runs under.
const timeBin = "/usr/bin/time"

func parseMiB(s string) (int64, error) {
	s = strings.TrimSuffix(strings.ToUpper(s), "IB")
	switch {
	case strings.HasSuffix(s, "G"):
		v, err := strconv.ParseInt(strings.TrimSuffix(s, "G"), 10, 64)
		return v << 10, err
	case strings.HasSuffix(s, "M"):
		return strconv.ParseInt(strings.TrimSuffix(s, "M"), 10, 64)
	}
	return 0, fmt.Errorf("memory %q", s)
}

// TestScaleChild is one task of TestScale.
func TestScaleChild(t *testing.T) {
	spec := os.Getenv("SMELT_DEDUP_SCALE_CHILD")
	if spec == "" {
		t.Skip("child of TestScale")
	}
	a := strings.Split(spec, "\x1f")
	dir, step := a[0], a[1]
	ctx := context.Background()
	opt := DefaultOptions()
	if err := opt.Validate(); err != nil {
		t.Fatal(err)
	}
	in := func(i int) string { return filepath.Join(dir, "in", taskName(i)) }
	sk := func(i int) string { return filepath.Join(dir, "work", "sketch", taskName(i)) }
	var sketches, buckets []string
	for i := 0; i < scaleTasks; i++ {
		sketches = append(sketches, sk(i))
	}
	for p := 0; p < scaleParts; p++ {
		buckets = append(buckets, filepath.Join(dir, "work", "bucket", taskName(p)))
	}
	clusterDir := filepath.Join(dir, "work", "cluster")
	var err error
	switch step {
	case "sketch":
		i, _ := strconv.Atoi(a[2])
		_, err = SketchTask(ctx, SketchConfig{Input: in(i), Task: i, Dir: sk(i), Options: opt, Parts: scaleParts, BufferBytes: scaleBuffer, Workers: 2})
	case "bucket":
		p, _ := strconv.Atoi(a[2])
		_, err = BucketTask(ctx, BucketConfig{Sketches: sketches, Part: p, Parts: scaleParts, Dir: buckets[p], Options: opt})
	case "cluster":
		_, err = ClusterTask(ctx, ClusterConfig{Sketches: sketches, Buckets: buckets, Dir: clusterDir, Options: opt})
	case "route":
		i, _ := strconv.Atoi(a[2])
		_, err = RouteTask(ctx, RouteConfig{Inputs: []string{in(i)}, Tasks: []int{i}, ClusterDir: clusterDir,
			Out: filepath.Join(dir, "out", taskName(i)), Workers: 2, Options: opt})
	case "inmemory":
		err = inMemoryRun(ctx, dir, opt)
	default:
		err = clusterScaleChild(ctx, dir, a[1:], sketches, buckets, opt)
	}
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("child ok")
}

// inMemoryRun is the dedup smelt had before the staged steps, end to end:
// sketch every input document into one in-memory index, decide, and route
// with shards.RunDocStage.
func inMemoryRun(ctx context.Context, dir string, opt Options) error {
	var inputs []string
	for i := 0; i < scaleTasks; i++ {
		inputs = append(inputs, filepath.Join(dir, "in", taskName(i)))
	}
	sk, err := NewSketcher(&opt)
	if err != nil {
		return err
	}
	r, err := shards.OpenDocDirs(inputs...)
	if err != nil {
		return err
	}
	d := newMemDeduper(opt)
	type item struct {
		doc *shards.Document
		k   Sketch
	}
	next := func() (*shards.Document, bool, error) {
		doc, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil, false, nil
		}
		return doc, err == nil, err
	}
	f := func(doc *shards.Document) item {
		k := sk.Sketch(doc)
		return item{&shards.Document{ID: doc.ID, Quality: doc.Quality, HasQuality: doc.HasQuality}, k}
	}
	if err := shards.OrderedMap(ctx, 2, next, f, func(it item) error { return d.add(it.doc, it.k) }); err != nil {
		return err
	}
	r.Close()
	clusters, err := d.decide(ctx)
	if err != nil {
		return err
	}
	drop := map[int64]string{}
	for _, c := range clusters {
		for _, m := range c.Members {
			if m != c.Survivor {
				drop[m] = d.ids[c.Survivor]
			}
		}
	}
	_, err = shards.RunDocStage(ctx, shards.DocStageConfig{Stage: "dedup", Inputs: inputs, Out: filepath.Join(dir, "out-inmemory"), Workers: 2,
		ProcessAt: func(i int64, doc *shards.Document) (*shards.Document, error) {
			if s, ok := drop[i]; ok {
				doc.Drop = &shards.Drop{Reason: ReasonMinHash, DupOf: s}
			}
			return doc, nil
		}})
	return err
}

// synthQuality reads the dropped side outputs and scores the clusters they
// make (each survivor with the documents dropped as its duplicates)
// against the injected groups.
func synthQuality(t *testing.T, outs []string, truth SynthTruth) (p, r float64) {
	t.Helper()
	clusters := map[string][]string{}
	for _, o := range outs {
		rd, err := shards.OpenDocDirs(filepath.Join(o, shards.DroppedDir))
		if err != nil {
			t.Fatal(err)
		}
		for {
			d, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			clusters[d.Drop.DupOf] = append(clusters[d.Drop.DupOf], d.ID)
		}
		rd.Close()
	}
	var found, tp int64
	for s, m := range clusters {
		m = append(m, s)
		k := int64(len(m))
		found += k * (k - 1) / 2
		groups := map[string]int64{}
		for _, id := range m {
			if g := SynthGroup(id); g != "" {
				groups[g]++
			}
		}
		for _, c := range groups {
			tp += c * (c - 1) / 2
		}
	}
	p, r = 1, 1
	if found > 0 {
		p = float64(tp) / float64(found)
	}
	if truth.Pairs > 0 {
		r = float64(tp) / float64(truth.Pairs)
	}
	return p, r
}

func TestScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SMELT_DEDUP_SCALE"))
	if n <= 0 {
		t.Skip("set SMELT_DEDUP_SCALE=N to run the scale benchmark")
	}
	mem := os.Getenv("SMELT_DEDUP_MEM")
	if mem == "" {
		mem = "1GiB"
	}
	limit, err := parseMiB(mem)
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("SMELT_DEDUP_SCALE_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	peer := 200000
	if s := os.Getenv("SMELT_DEDUP_SCALE_PEER"); s != "" {
		peer, _ = strconv.Atoi(s)
	}
	t0 := time.Now()
	var truth SynthTruth
	if b, err := os.ReadFile(filepath.Join(dir, "in", "truth.json")); err == nil && json.Unmarshal(b, &truth) == nil && truth.Docs == int64(n) {
		// The same corpus again (generated with the same seed): reuse it.
		for _, d := range []string{"work", "out", "out-inmemory"} {
			os.RemoveAll(filepath.Join(dir, d))
		}
	} else if truth, err = WriteSynth(filepath.Join(dir, "in"), SynthConfig{Docs: n, Boilerplate: n / 100, Seed: 1}, scaleTasks); err != nil {
		t.Fatal(err)
	}
	t.Logf("generated %d documents, %.1f MB of text, %d injected pairs, in %v", truth.Docs, float64(truth.Bytes)/1e6, truth.Pairs, time.Since(t0).Round(time.Second))
	steps := []struct {
		name  string
		tasks int
	}{{"sketch", scaleTasks}, {"bucket", scaleParts}, {"cluster", 1}, {"route", scaleTasks}}
	var total usage
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n| step | tasks | peak RSS of a task (max) | CPU s (all tasks) | wall s |\n|---|---|---|---|---|\n")
	for _, s := range steps {
		var u usage
		for i := 0; i < s.tasks; i++ {
			c := runChild(t, dir, mem, s.name, strconv.Itoa(i))
			u.maxRSS, u.cpu, u.wall = max(u.maxRSS, c.maxRSS), u.cpu+c.cpu, u.wall+c.wall
		}
		total.maxRSS, total.cpu, total.wall = max(total.maxRSS, u.maxRSS), total.cpu+u.cpu, total.wall+u.wall
		fmt.Fprintf(&sb, "| %s | %d | %.0f MiB | %.1f | %.1f |\n", s.name, s.tasks, float64(u.maxRSS)/(1<<20), u.cpu.Seconds(), u.wall.Seconds())
		if u.maxRSS > limit<<20 {
			t.Errorf("step %s: a task's peak RSS %d MiB is over the limit %s", s.name, u.maxRSS>>20, mem)
		}
	}
	mbps := float64(truth.Bytes) / 1e6 / total.cpu.Seconds()
	fmt.Fprintf(&sb, "| all | | %.0f MiB | %.1f | %.1f |\n", float64(total.maxRSS)/(1<<20), total.cpu.Seconds(), total.wall.Seconds())
	var outs []string
	for i := 0; i < scaleTasks; i++ {
		outs = append(outs, filepath.Join(dir, "out", taskName(i)))
	}
	p, r := synthQuality(t, outs, truth)
	fmt.Fprintf(&sb, "\n%d documents, %.1f MB: staged %.2f MB per CPU-second; injected pairs precision %.4f recall %.4f\n", n, float64(truth.Bytes)/1e6, mbps, p, r)
	if p < 0.95 || r < 0.95 {
		t.Errorf("precision %.4f recall %.4f: want both >= 0.95", p, r)
	}
	if n <= peer {
		u := runChild(t, dir, "64GiB", "inmemory")
		pm, rm := synthQuality(t, []string{filepath.Join(dir, "out-inmemory")}, truth)
		fmt.Fprintf(&sb, "in-memory dedup, same run: peak RSS %.0f MiB, %.1f CPU s, %.1f wall s, %.2f MB per CPU-second (staged/in-memory %.2fx); precision %.4f recall %.4f\n",
			float64(u.maxRSS)/(1<<20), u.cpu.Seconds(), u.wall.Seconds(), float64(truth.Bytes)/1e6/u.cpu.Seconds(), u.cpu.Seconds()/total.cpu.Seconds(), pm, rm)
	}
	t.Log(sb.String())
}
