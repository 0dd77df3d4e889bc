package dedup

import (
	"bufio"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/smelt-dev/smelt/shards"
)

// The cluster step cut into partitions (Config.ClusterTasks, a recipe's
// dedup.steps.cluster.tasks): the components in rounds
// (ComponentsTask), a join per partition (ComponentsJoinTask), a decision
// task per partition (ClusterTask over JoinedPairs) and a merge of their
// results (MergeClusterTasks). The decision files stay in the partitions'
// directories, one per sketch task in each; every reader (the route
// tasks, the store commit, the output's dedup_decisions/) merges a sketch
// task's files by (cluster, row), which gives the bytes the single
// cluster task writes: a cluster's number in them is the input position of
// its first member, and a task writes its clusters in that order.

// ComponentsFingerprint identifies the components step's input: the
// bucket tasks' pairs (by the tasks' fingerprints) cut into parts
// partitions.
func ComponentsFingerprint(buckets []string, parts int) (string, error) {
	fps, err := bucketFingerprints(buckets)
	if err != nil {
		return "", err
	}
	return shards.Fingerprint("dedup-components", parts, fps...)
}

func bucketFingerprints(buckets []string) ([]any, error) {
	out := make([]any, len(buckets))
	for i, b := range buckets {
		raw, err := os.ReadFile(filepath.Join(b, bucketDone))
		if err != nil {
			return nil, fmt.Errorf("dedup: bucket task %s is not finished: %w", b, err)
		}
		var bi bucketInfo
		if err := json.Unmarshal(raw, &bi); err != nil {
			return nil, fmt.Errorf("dedup: %s: %w", b, err)
		}
		out[i] = bi.Fingerprint
	}
	return out, nil
}

// decisionSource is one decision file in a merge.
type decisionSource struct {
	path string
	f    *os.File
	r    *bufio.Reader
	line []byte
	l    decisionLine
	n    int
}

func (s *decisionSource) next() (bool, error) {
	line, err := s.r.ReadBytes('\n')
	if len(line) == 0 && errors.Is(err, io.EOF) {
		return false, nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("dedup: %s: %w", s.path, err)
	}
	if line[len(line)-1] != '\n' {
		return false, fmt.Errorf("dedup: %s: decision %d: %w", s.path, s.n, io.ErrUnexpectedEOF)
	}
	s.l = decisionLine{}
	if err := json.Unmarshal(line, &s.l); err != nil {
		return false, fmt.Errorf("dedup: %s: decision %d: %w", s.path, s.n, err)
	}
	s.line = line
	s.n++
	return true, nil
}

type decisionHeap []*decisionSource

func (h decisionHeap) Len() int { return len(h) }
func (h decisionHeap) Less(i, j int) bool {
	if h[i].l.Cluster != h[j].l.Cluster {
		return h[i].l.Cluster < h[j].l.Cluster
	}
	return h[i].l.Row < h[j].l.Row
}
func (h decisionHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *decisionHeap) Push(x any)   { *h = append(*h, x.(*decisionSource)) }
func (h *decisionHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mergeDecisionLines calls emit with every line of sketch task task's
// decision files in dirs, merged in (cluster, row) order: with one
// directory, the file's lines as they are.
func mergeDecisionLines(ctx context.Context, dirs []string, task int, emit func(line []byte, l *decisionLine) error) error {
	var h decisionHeap
	defer func() {
		for _, s := range h {
			s.f.Close()
		}
	}()
	for _, d := range dirs {
		path := filepath.Join(d, decisionFile(task))
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("dedup: %w", err)
		}
		s := &decisionSource{path: path, f: f, r: bufio.NewReaderSize(f, 64<<10)}
		ok, err := s.next()
		if err != nil || !ok {
			f.Close()
			if err != nil {
				return err
			}
			continue
		}
		h = append(h, s)
	}
	heap.Init(&h)
	for n := 0; len(h) > 0; n++ {
		if n%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		s := h[0]
		if err := emit(s.line, &s.l); err != nil {
			return err
		}
		ok, err := s.next()
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(&h, 0)
		} else {
			s.f.Close()
			heap.Pop(&h)
		}
	}
	return nil
}

// readDecisionsFrom reads sketch task task's decisions from the decision
// files in dirs, by row, and hashes their merged bytes into h (if set).
func readDecisionsFrom(ctx context.Context, dirs []string, task int, h io.Writer) (map[int64]Decision, error) {
	out := map[int64]Decision{}
	err := mergeDecisionLines(ctx, dirs, task, func(line []byte, l *decisionLine) error {
		if h != nil {
			h.Write(line)
		}
		l.internReason()
		out[l.Row] = l.Decision
		return nil
	})
	return out, err
}

// writeMergedDecisions writes sketch task task's decisions from dirs,
// merged, to dst (atomically).
func writeMergedDecisions(ctx context.Context, dirs []string, task int, dst string) error {
	if len(dirs) == 1 {
		return copyFileAtomic(filepath.Join(dirs[0], decisionFile(task)), dst)
	}
	f, err := shards.CreateAtomic(dst)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 64<<10)
	err = mergeDecisionLines(ctx, dirs, task, func(line []byte, _ *decisionLine) error {
		_, err := w.Write(line)
		return err
	})
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		f.Abort()
		return fmt.Errorf("dedup: %s: %w", dst, err)
	}
	return f.Commit()
}

// MergeConfig is the merge after the partitions' decision tasks.
type MergeConfig struct {
	// Parts are the decision tasks' directories (ClusterTask's Dir), by
	// partition.
	Parts []string
	// Snapshot is the store generation they decided against (nil without
	// a store).
	Snapshot *Snapshot
	// Dir receives the merged result, as a single cluster task's
	// directory holds it, without the decision files (they stay in
	// Parts).
	Dir string
	// Full and TopClusters are the decision tasks' (ClusterConfig).
	Full        bool
	TopClusters int
}

// MergeClusterTasks merges the results of the partitions' decision tasks
// into the Result the single cluster task gives for the same input: the
// counts summed (those of the sketch and bucket tasks, which every
// partition reads, taken once), the clusters in the order of their first
// member, the TopClusters largest of them (every one with Full) and their
// members' decisions. It reads the tasks' results only (each holds its
// largest clusters), not their decision files.
func MergeClusterTasks(ctx context.Context, cfg MergeConfig) (*Result, error) {
	if len(cfg.Parts) == 0 {
		return nil, errors.New("dedup: merge of no decision tasks")
	}
	top := cfg.TopClusters
	if top <= 0 {
		top = 20
	}
	if cfg.Full {
		top = 0
	}
	var fps []any
	for _, p := range cfg.Parts {
		info, err := readClusterInfo(p)
		if err != nil {
			return nil, fmt.Errorf("dedup: decision task %s is not finished: %w", p, err)
		}
		if info.Snapshot != cfg.Snapshot.identity() {
			return nil, fmt.Errorf("dedup: decision task %s decided on another store generation", p)
		}
		fps = append(fps, info.Fingerprint)
	}
	fp, err := shards.Fingerprint("dedup-merge", struct {
		Top int    `json:"top"`
		Gen string `json:"gen"`
	}{top, cfg.Snapshot.identity()}, fps...)
	if err != nil {
		return nil, err
	}
	if info, err := readClusterInfo(cfg.Dir); err == nil && info.Fingerprint == fp {
		return readResult(cfg.Dir)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	_ = os.Remove(filepath.Join(cfg.Dir, clusterDone))
	res := &Result{Decisions: map[int64]Decision{}}
	decs := map[int64]Decision{}
	for i, p := range cfg.Parts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r, err := readResult(p)
		if err != nil {
			return nil, err
		}
		s := &res.Summary
		if i == 0 {
			*s = r.Summary // what every partition read alike
			s.StoreExact, s.StoreURL, s.StoreMinHash, s.VerifyKept, s.Clusters, s.Dropped = 0, 0, 0, 0, 0, 0
		}
		s.StoreExact += r.Summary.StoreExact
		s.StoreURL += r.Summary.StoreURL
		s.StoreMinHash += r.Summary.StoreMinHash
		s.VerifyKept += r.Summary.VerifyKept
		s.Clusters += r.Summary.Clusters
		s.Dropped += r.Summary.Dropped
		res.Clusters = append(res.Clusters, r.Clusters...)
		for pos, d := range r.Decisions {
			decs[pos] = d
		}
	}
	slices.SortFunc(res.Clusters, func(a, b Cluster) int {
		pa, pb := firstPos(a), firstPos(b)
		switch {
		case pa < pb:
			return -1
		case pa > pb:
			return 1
		}
		return 0
	})
	if top > 0 {
		res.Clusters = keepLargest(res.Clusters, top)
	}
	for i, c := range res.Clusters {
		for _, pos := range c.Members {
			d, ok := decs[pos]
			if !ok {
				return nil, fmt.Errorf("dedup: merge: no decision for document %d of a cluster", pos)
			}
			d.Cluster = i
			res.Decisions[pos] = d
		}
	}
	b, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	if err := shards.WriteFileAtomic(filepath.Join(cfg.Dir, resultFile), b); err != nil {
		return nil, err
	}
	b, _ = json.Marshal(clusterInfo{Fingerprint: fp, Snapshot: cfg.Snapshot.identity()})
	if err := shards.WriteFileAtomic(filepath.Join(cfg.Dir, clusterDone), b); err != nil {
		return nil, err
	}
	return res, nil
}

// parallel runs f(0..n-1) on up to workers goroutines, stopping the
// others at the first error.
func parallel(ctx context.Context, n, workers int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < max(1, min(workers, n)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(ctx, i); err != nil {
					errs[i] = err
					cancel()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// clusterPartitioned runs the cluster step cut into parts partitions in
// this process (Run with ClusterTasks > 1): the components in rounds, the
// joins, the decision tasks (workers at a time) and the merge into
// clusterDir. It returns the merged result and the directories holding
// the decision files.
func clusterPartitioned(ctx context.Context, cfg ClusterConfig, work, clusterDir string, parts, workers int) (*Result, []string, error) {
	fp, err := ComponentsFingerprint(cfg.Buckets, parts)
	if err != nil {
		return nil, nil, err
	}
	ccDir := filepath.Join(work, "components")
	final, err := components(ctx, ComponentPairFiles(cfg.Buckets), ccDir, parts, workers, 0, fp)
	if err != nil {
		return nil, nil, err
	}
	if err := hook("components"); err != nil {
		return nil, nil, err
	}
	joins := make([]string, parts)
	decide := make([]string, parts)
	for p := range joins {
		joins[p] = filepath.Join(work, "join", taskName(p))
		decide[p] = filepath.Join(work, "decide", taskName(p))
	}
	if err := parallel(ctx, parts, workers, func(ctx context.Context, p int) error {
		return ComponentsJoinTask(ctx, CCJoinConfig{Buckets: cfg.Buckets, Dir: ccDir, Final: final, Part: p, Parts: parts,
			Out: joins[p], Fingerprint: fp})
	}); err != nil {
		return nil, nil, err
	}
	if err := parallel(ctx, parts, workers, func(ctx context.Context, q int) error {
		c := cfg
		c.Dir = decide[q]
		c.TextPairs, c.URLPairs = JoinedPairs(joins, q)
		_, err := ClusterTask(ctx, c)
		return err
	}); err != nil {
		return nil, nil, err
	}
	if err := hook("decided"); err != nil {
		return nil, nil, err
	}
	res, err := MergeClusterTasks(ctx, MergeConfig{Parts: decide, Snapshot: cfg.Snapshot, Dir: clusterDir, Full: cfg.Full, TopClusters: cfg.TopClusters})
	return res, decide, err
}

// MaxClusterTasks bounds the cluster step's partitions (each task of a
// round writes one edge file per partition).
const MaxClusterTasks = 4096
