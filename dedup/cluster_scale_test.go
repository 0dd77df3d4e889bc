package dedup

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestClusterScale measures the cluster step as one task and cut into N
// = 1, 2, 4, 8 partitions (components rounds, joins, decision tasks, the
// merge), every task a child process under /usr/bin/time (runChild), on
// the synthetic corpus of SMELT_DEDUP_CC_SCALE documents with half of them
// near copies (smelt dedup synth --near 0.5: 74 % in a cluster). It
// checks that the merged decision files are the single task's bytes and
// that the most a task needs falls as N grows, and logs the table of
// docs/dedup.md:
//
//	SMELT_DEDUP_CC_SCALE=300000 nice go test ./dedup -run '^TestClusterScale$' -v -timeout 2h
//
// SMELT_DEDUP_SCALE_DIR keeps (and reuses) the files;
// SMELT_DEDUP_CC_TASKS=1,8,32 sets the task counts.
func TestClusterScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SMELT_DEDUP_CC_SCALE"))
	if n <= 0 {
		t.Skip("set SMELT_DEDUP_CC_SCALE=DOCS to measure the partitioned cluster step")
	}
	dir := os.Getenv("SMELT_DEDUP_SCALE_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	ctx := context.Background()
	opt := DefaultOptions()
	if err := opt.Validate(); err != nil {
		t.Fatal(err)
	}
	var sketches, buckets []string
	for i := 0; i < scaleTasks; i++ {
		sketches = append(sketches, filepath.Join(dir, "work", "sketch", taskName(i)))
	}
	for p := 0; p < scaleParts; p++ {
		buckets = append(buckets, filepath.Join(dir, "work", "bucket", taskName(p)))
	}
	t0 := time.Now()
	if _, err := os.Stat(filepath.Join(buckets[scaleParts-1], bucketDone)); err != nil {
		os.RemoveAll(dir)
		truth, err := WriteSynth(filepath.Join(dir, "in"), SynthConfig{Docs: n, NearFrac: 0.5, Seed: 1}, scaleTasks)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("generated %d documents, %.1f MB, %d near-copy documents", truth.Docs, float64(truth.Bytes)/1e6, truth.Members)
		for i := range sketches {
			if _, err := SketchTask(ctx, SketchConfig{Input: filepath.Join(dir, "in", taskName(i)), Task: i, Dir: sketches[i], Options: opt,
				Parts: scaleParts, BufferBytes: scaleBuffer, Workers: 2}); err != nil {
				t.Fatal(err)
			}
		}
		for p := range buckets {
			if _, err := BucketTask(ctx, BucketConfig{Sketches: sketches, Part: p, Parts: scaleParts, Dir: buckets[p], Options: opt}); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("sketch and bucket steps (in the test process) in %v", time.Since(t0).Round(time.Second))
	}
	for _, d := range []string{"cluster", "cc", "join", "decide", "merge"} {
		os.RemoveAll(filepath.Join(dir, "work", d))
	}
	const mem = "8GiB" // no limit that matters: GOMEMLIMIT 6 GiB
	single := runChild(t, dir, mem, "cluster")
	one, err := readResult(filepath.Join(dir, "work", "cluster"))
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%d documents, %d in %d clusters, %d pairs read (%d candidate, %d exact, %d URL)\n", one.Summary.Documents,
		one.Summary.Dropped+one.Summary.Clusters, one.Summary.Clusters, one.Summary.VerifiedPairs+one.Summary.ExactPairs+one.Summary.URLPairs,
		one.Summary.CandidatePairs, one.Summary.ExactPairs, one.Summary.URLPairs)
	fmt.Fprintf(&sb, "\n| cluster tasks N | rounds run | components, max task RSS | join, max | decision, max | merge | CPU s, all tasks | wall s, tasks one after another |\n|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(&sb, "| single cluster task | | | | %.1f MiB | | %.1f | %.1f |\n", mib(single.maxRSS), single.cpu.Seconds(), single.wall.Seconds())
	var oneTask int64
	ns := []int{1, 2, 4, 8}
	if e := os.Getenv("SMELT_DEDUP_CC_TASKS"); e != "" { // e.g. 1,8,32
		ns = nil
		for _, f := range strings.Split(e, ",") {
			v, err := strconv.Atoi(f)
			if err != nil || v < 1 {
				t.Fatalf("SMELT_DEDUP_CC_TASKS %q: want task counts such as 1,8,32", e)
			}
			ns = append(ns, v)
		}
	}
	for _, parts := range ns {
		N := strconv.Itoa(parts)
		var cc, join, decide usage
		add := func(u *usage, c usage) { u.maxRSS, u.cpu, u.wall = max(u.maxRSS, c.maxRSS), u.cpu+c.cpu, u.wall+c.wall }
		final, rounds := 0, 0
		for r := 1; final == 0; r++ {
			rounds = r
			if r > 64 {
				t.Fatal("no components after 64 rounds")
			}
			for p := 0; p < parts; p++ {
				add(&cc, runChild(t, dir, mem, "cc", N, strconv.Itoa(r), strconv.Itoa(p)))
			}
			if final, err = ComponentsFinal(filepath.Join(dir, "work", "cc", N), r, parts); err != nil {
				t.Fatal(err)
			}
		}
		for p := 0; p < parts; p++ {
			add(&join, runChild(t, dir, mem, "join", N, strconv.Itoa(final), strconv.Itoa(p)))
		}
		for q := 0; q < parts; q++ {
			add(&decide, runChild(t, dir, mem, "decide", N, strconv.Itoa(q)))
		}
		merge := runChild(t, dir, mem, "merge", N)
		res, err := readResult(filepath.Join(dir, "work", "merge", N))
		if err != nil {
			t.Fatal(err)
		}
		if res.Summary != one.Summary {
			t.Errorf("%d tasks: summary %+v, the single task %+v", parts, res.Summary, one.Summary)
		}
		var decDirs []string
		for q := 0; q < parts; q++ {
			decDirs = append(decDirs, filepath.Join(dir, "work", "decide", N, taskName(q)))
		}
		for i := range sketches {
			dst := filepath.Join(dir, "work", "merged.jsonl")
			if err := writeMergedDecisions(ctx, decDirs, i, dst); err != nil {
				t.Fatal(err)
			}
			a, _ := os.ReadFile(dst)
			b, _ := os.ReadFile(filepath.Join(dir, "work", "cluster", decisionFile(i)))
			if !bytes.Equal(a, b) {
				t.Errorf("%d tasks: merged decisions of input %d differ from the single task's", parts, i)
			}
		}
		if parts == 1 {
			oneTask = max(cc.maxRSS, join.maxRSS, decide.maxRSS)
		} else if most := max(cc.maxRSS, join.maxRSS, decide.maxRSS); parts >= 8 && oneTask > 0 && most >= oneTask {
			t.Errorf("%d tasks: a task peaked at %.1f MiB, no less than with 1 (%.1f MiB)", parts, mib(most), mib(oneTask))
		}
		all := cc.cpu + join.cpu + decide.cpu + merge.cpu
		wall := cc.wall + join.wall + decide.wall + merge.wall
		fmt.Fprintf(&sb, "| %d | %d | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %.1f | %.1f |\n", parts, rounds, mib(cc.maxRSS), mib(join.maxRSS),
			mib(decide.maxRSS), mib(merge.maxRSS), all.Seconds(), wall.Seconds())
		for _, d := range []string{"cc", "join", "decide"} {
			os.RemoveAll(filepath.Join(dir, "work", d, N)) // disk
		}
	}
	floor := runChild(t, dir, mem, "floor")
	fmt.Fprintf(&sb, "\nprocess floor (the test binary doing nothing): %.1f MiB\n", mib(floor.maxRSS))
	t.Log(sb.String())
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// clusterScaleChild runs one task of TestClusterScale: a[0] is the kind,
// then N and the task's numbers.
func clusterScaleChild(ctx context.Context, dir string, a []string, sketches, buckets []string, opt Options) error {
	if a[0] == "floor" {
		return nil
	}
	parts, _ := strconv.Atoi(a[1])
	N := a[1]
	fp, err := ComponentsFingerprint(buckets, parts)
	if err != nil {
		return err
	}
	work := filepath.Join(dir, "work")
	joins := make([]string, parts)
	decide := make([]string, parts)
	for p := range joins {
		joins[p] = filepath.Join(work, "join", N, taskName(p))
		decide[p] = filepath.Join(work, "decide", N, taskName(p))
	}
	switch a[0] {
	case "cc":
		r, _ := strconv.Atoi(a[2])
		p, _ := strconv.Atoi(a[3])
		_, err = ComponentsTask(ctx, CCConfig{Pairs: ComponentPairFiles(buckets), Dir: filepath.Join(work, "cc", N), Round: r, Part: p, Parts: parts, Fingerprint: fp})
	case "join":
		final, _ := strconv.Atoi(a[2])
		p, _ := strconv.Atoi(a[3])
		err = ComponentsJoinTask(ctx, CCJoinConfig{Buckets: buckets, Dir: filepath.Join(work, "cc", N), Final: final, Part: p, Parts: parts, Out: joins[p], Fingerprint: fp})
	case "decide":
		q, _ := strconv.Atoi(a[2])
		text, url := JoinedPairs(joins, q)
		_, err = ClusterTask(ctx, ClusterConfig{Sketches: sketches, Buckets: buckets, Dir: decide[q], Options: opt, TextPairs: text, URLPairs: url})
	case "merge":
		_, err = MergeClusterTasks(ctx, MergeConfig{Parts: decide, Dir: filepath.Join(work, "merge", N)})
	default:
		err = fmt.Errorf("unknown step %q", a[0])
	}
	return err
}
