package dedup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"github.com/smelt-dev/smelt/shards"
)

// File names dedup writes into its output directory besides the shards.
const (
	// DecisionsName holds the decision of a finished run.
	DecisionsName = "dedup_decisions.json"
	// ClustersName holds the largest clusters with ids, URLs and first
	// lines of their members.
	ClustersName = "dedup_clusters.json"
	// WorkDirName is the directory, inside the output, of the steps'
	// intermediate files while a run is not finished.
	WorkDirName = ".dedup-work"
	// DecisionsDir, inside the output, holds the decisions of the
	// documents in a cluster, one file per input directory
	// (dec-NNNNN.json: {"rows": [...], "decisions": [...]}, rows counted
	// from 0 in the input's order).
	DecisionsDir = "dedup_decisions"
)

// Config describes one dedup run over document-shard directories.
type Config struct {
	// Inputs are finished document-shard directories; each is one sketch
	// task.
	Inputs []string
	// Out receives kept documents, Out/dropped the duplicates.
	Out string
	// Work holds the steps' intermediate files (default Out/.dedup-work);
	// it is removed when the run is finished.
	Work string
	// Workers compute sketches, run bucket tasks and route documents (0 =
	// all cores); the output does not depend on it.
	Workers int
	// BucketTasks is the number of bucket partitions (0 = 4); the output
	// does not depend on it.
	BucketTasks int
	// ClusterTasks cuts the cluster step into that many partitions
	// (components in rounds, a join and a decision task per partition,
	// then a merge), each task's memory bounded by its partition's share
	// of the clustered documents; 0 or 1 is the single cluster task. The
	// output does not depend on it.
	ClusterTasks int
	// BufferBytes bounds each sketch task's records in memory (0 = 64 MiB).
	BufferBytes int64
	// TargetBytes is the output shard size (0 = default).
	TargetBytes int64
	// Options are the dedup settings (DefaultOptions when zero).
	Options Options
	// StorePath, if set, is a persistent store: the input is deduplicated
	// against every document kept into it before, and the documents this
	// run keeps are added to it.
	StorePath string
	// TopClusters is how many of the largest clusters ClustersName lists
	// (0 = 20), with up to MaxMembers members each (0 = 10).
	TopClusters, MaxMembers int
	// FullResult makes the returned Result hold every cluster and every
	// decision (memory then grows with the clustered documents); by
	// default it holds the summary and the TopClusters largest clusters,
	// and the decisions are in Out/DecisionsDir, one file per input.
	FullResult bool
	// Progress, if set, is called with documents and bytes done out of the
	// totals, for each of the passes ("sketch", "route").
	Progress func(pass string, docs, bytes, totalDocs, totalBytes int64)
}

// decisionsFile is DecisionsName's content.
type decisionsFile struct {
	Run     string  `json:"run"`
	Options Options `json:"options"`
	Store   string  `json:"store,omitempty"`
	Result  *Result `json:"result"`
}

// RunIdentity identifies a dedup run by its settings and the content of
// its inputs (not their paths, nor the output): a store segment is keyed
// by it, and a rerun of the same run decides against what the store held
// before that run committed.
func RunIdentity(opt Options, inputs []string) (string, error) {
	var ids []any
	for _, in := range inputs {
		r, err := shards.OpenDocDirs(in)
		if err != nil {
			return "", fmt.Errorf("dedup: %w", err)
		}
		ids = append(ids, r.Identity()...)
		r.Close()
	}
	return shards.Fingerprint("dedup-run", opt, ids...)
}

// Run deduplicates cfg.Inputs into cfg.Out in one process, with the same
// steps a pipeline runs as separate tasks: sketch (one task per input
// directory), bucket (BucketTasks partitions of the key space), cluster
// (the decision; then the store commit) and route (kept documents to Out,
// duplicates to Out/dropped with reason dedup:exact, dedup:url or
// dedup:minhash, the estimated similarity and the survivor's id in
// dup_of). Documents are referenced by (input, row): a document id that
// occurs twice is two documents, dropped only when its text duplicates
// another. Each step's tasks write their files atomically and a completion
// file last, so a run killed at any point and started again with the same
// configuration resumes and ends with the same files; with a store, a
// decision made before another run committed to it is made again.
func Run(ctx context.Context, cfg Config) (*shards.Stats, *Result, error) {
	opt := cfg.Options
	if opt == (Options{}) {
		opt = DefaultOptions()
	}
	if _, err := NewSketcher(&opt); err != nil {
		return nil, nil, err
	}
	if cfg.Out == "" {
		return nil, nil, errors.New("dedup: no output directory")
	}
	if len(cfg.Inputs) == 0 {
		return nil, nil, errors.New("dedup: no input")
	}
	if len(cfg.Inputs) > MaxTasks {
		return nil, nil, fmt.Errorf("dedup: %d input directories: at most %d", len(cfg.Inputs), MaxTasks)
	}
	parts := cfg.BucketTasks
	if parts <= 0 {
		parts = 4
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	run, err := RunIdentity(opt, cfg.Inputs)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, nil, fmt.Errorf("dedup: create output: %w", err)
	}
	unlock, err := shards.LockOutput(cfg.Out) // one writer per output directory
	if err != nil {
		return nil, nil, fmt.Errorf("dedup: %w", err)
	}
	defer unlock()

	decPath := filepath.Join(cfg.Out, DecisionsName)
	if _, err := shards.ReadManifest(cfg.Out); err == nil {
		// A finished output: the same run again changes nothing.
		if b, err := os.ReadFile(decPath); err == nil {
			var f decisionsFile
			if json.Unmarshal(b, &f) == nil && f.Run == run && f.Result != nil {
				st, err := shards.ReadStats(cfg.Out)
				return st, f.Result, err
			}
		}
		return nil, nil, fmt.Errorf("%s holds the finished output of a different dedup run (other inputs or settings): choose a new output directory or remove it", cfg.Out)
	}
	work := cfg.Work
	if work == "" {
		work = filepath.Join(cfg.Out, WorkDirName)
	}
	sketches := make([]string, len(cfg.Inputs))
	for i := range cfg.Inputs {
		sketches[i] = filepath.Join(work, "sketch", taskName(i))
	}
	buckets := make([]string, parts)
	for p := range buckets {
		buckets[p] = filepath.Join(work, "bucket", taskName(p))
	}
	clusterDir := filepath.Join(work, "cluster")

	var totalDocs, totalBytes, doneDocs, doneBytes int64
	for _, in := range cfg.Inputs {
		r, err := shards.OpenDocDirs(in)
		if err != nil {
			return nil, nil, fmt.Errorf("dedup: %w", err)
		}
		totalDocs, totalBytes = totalDocs+r.TotalRows(), totalBytes+r.TotalDataBytes()
		r.Close()
	}
	for i, in := range cfg.Inputs {
		base, baseBytes := doneDocs, doneBytes
		info, err := SketchTask(ctx, SketchConfig{Input: in, Task: i, Dir: sketches[i], Options: opt, Parts: parts,
			BufferBytes: cfg.BufferBytes, Workers: workers,
			Progress: func(docs, bytes, _, _ int64) {
				if cfg.Progress != nil {
					cfg.Progress("sketch", base+docs, baseBytes+bytes, totalDocs, totalBytes)
				}
			}})
		if err != nil {
			return nil, nil, err
		}
		doneDocs, doneBytes = doneDocs+info.Rows, doneBytes+info.DataBytes
		if err := hook("sketched"); err != nil {
			return nil, nil, err
		}
	}

	if cfg.ClusterTasks < 0 || cfg.ClusterTasks > MaxClusterTasks {
		return nil, nil, fmt.Errorf("dedup: %d cluster tasks: want 1..%d", cfg.ClusterTasks, MaxClusterTasks)
	}
	var snap *Snapshot
	var res *Result
	var decDirs []string // the directories of the decision files
	if cfg.StorePath != "" {
		// Store maintenance leaves the files of this run's snapshot alone
		// while it holds this.
		release, err := UseStore(cfg.StorePath)
		if err != nil {
			return nil, nil, err
		}
		defer release()
	}
	for attempt := 0; ; attempt++ {
		if cfg.StorePath != "" {
			if snap, err = ReadSnapshot(ctx, cfg.StorePath, opt, run); err != nil {
				return nil, nil, err
			}
		}
		if err := runBuckets(ctx, sketches, buckets, snap, opt, workers); err != nil {
			return nil, nil, err
		}
		if err := hook("bucketed"); err != nil {
			return nil, nil, err
		}
		ccfg := ClusterConfig{Sketches: sketches, Buckets: buckets, Snapshot: snap, Dir: clusterDir, Options: opt,
			Full: cfg.FullResult, TopClusters: cfg.TopClusters}
		if cfg.ClusterTasks > 1 {
			res, decDirs, err = clusterPartitioned(ctx, ccfg, work, clusterDir, cfg.ClusterTasks, workers)
		} else {
			res, err = ClusterTask(ctx, ccfg)
			decDirs = []string{clusterDir}
		}
		if err != nil {
			return nil, nil, err
		}
		if err := hook("clustered"); err != nil {
			return nil, nil, err
		}
		if snap == nil {
			break
		}
		err = CommitDecisionFrom(ctx, snap, opt, sketches, clusterDir, decDirs)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrStoreChanged) || attempt >= 10 {
			return nil, nil, err
		}
		slog.Info("dedup: another run committed to the store meanwhile; deciding again", "store", cfg.StorePath)
	}
	if err := WriteClusterReport(ctx, cfg.Inputs, res, clusterDir, cfg.TopClusters, cfg.MaxMembers); err != nil {
		return nil, nil, err
	}
	if err := copyFileAtomic(filepath.Join(clusterDir, ClustersName), filepath.Join(cfg.Out, ClustersName)); err != nil {
		return nil, nil, err
	}
	tasks := make([]int, len(cfg.Inputs))
	for i := range tasks {
		tasks[i] = i
	}
	st, err := RouteTask(ctx, RouteConfig{Inputs: cfg.Inputs, Tasks: tasks, ClusterDir: clusterDir, DecisionDirs: decDirs, Out: cfg.Out,
		Workers: workers, TargetBytes: cfg.TargetBytes, Options: opt,
		Progress: func(docs, bytes, totalDocs, totalBytes int64) {
			if docs == totalDocs/2 {
				_ = hook("route")
			}
			if cfg.Progress != nil {
				cfg.Progress("route", docs, bytes, totalDocs, totalBytes)
			}
		}})
	if err != nil {
		return nil, nil, err
	}
	store := ""
	if cfg.StorePath != "" {
		store, _ = filepath.Abs(cfg.StorePath)
	}
	b, err := json.Marshal(decisionsFile{Run: run, Options: opt, Store: store, Result: res})
	if err != nil {
		return nil, nil, err
	}
	decDir := filepath.Join(cfg.Out, DecisionsDir)
	if err := os.MkdirAll(decDir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("dedup: %w", err)
	}
	for t := range cfg.Inputs {
		if err := writeMergedDecisions(ctx, decDirs, t, filepath.Join(decDir, decisionFile(t))); err != nil {
			return nil, nil, err
		}
	}
	if err := shards.WriteFileAtomic(decPath, b); err != nil {
		return nil, nil, err
	}
	if cfg.Work == "" {
		if err := os.RemoveAll(work); err != nil {
			return nil, nil, fmt.Errorf("dedup: remove work files: %w", err)
		}
	}
	return st, res, nil
}

// testHook, if set (tests only), is called at named points of a run: after
// each sketch task ("sketched"), the bucket tasks ("bucketed"), the cluster
// task ("clustered"), in the store commit ("segment-written",
// "segment-renamed", "committed") and halfway through routing ("route").
// An error it returns stops the run there.
var testHook func(point string) error

func hook(point string) error {
	if testHook == nil {
		return nil
	}
	return testHook(point)
}

// runBuckets runs the bucket tasks on up to workers goroutines.
func runBuckets(ctx context.Context, sketches, buckets []string, snap *Snapshot, opt Options, workers int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(buckets))
	next := make(chan int)
	for w := 0; w < min(workers, len(buckets)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				if _, err := BucketTask(ctx, BucketConfig{Sketches: sketches, Snapshot: snap, Part: p, Parts: len(buckets), Dir: buckets[p], Options: opt}); err != nil {
					errs[p] = err
					cancel()
				}
			}
		}()
	}
	for p := range buckets {
		next <- p
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// CommitDecision adds the documents the cluster decision in clusterDir
// keeps to the store of snap, unless this run committed already. It fails
// with ErrStoreChanged when another run committed after snap was read: the
// decision must then be made again on a new snapshot.
func CommitDecision(ctx context.Context, snap *Snapshot, opt Options, sketches []string, clusterDir string) error {
	return CommitDecisionFrom(ctx, snap, opt, sketches, clusterDir, nil)
}

// CommitDecisionFrom is CommitDecision with the decision files in
// decisionDirs (a partitioned cluster step's decision tasks; nil:
// clusterDir).
func CommitDecisionFrom(ctx context.Context, snap *Snapshot, opt Options, sketches []string, clusterDir string, decisionDirs []string) error {
	if decisionDirs == nil {
		decisionDirs = []string{clusterDir}
	}
	info, err := readClusterInfo(clusterDir)
	if err != nil {
		return fmt.Errorf("dedup: the cluster decision is not finished: %w", err)
	}
	if info.Snapshot != snap.identity() {
		return fmt.Errorf("dedup store %s: %w (the decision was made on %s, the store is now %s)", snap.Path, ErrStoreChanged, info.Snapshot, snap.identity())
	}
	// One bit a document of this run (a crawl of 3e9 documents: 375 MB),
	// read one decision line at a time, not a map of every decision.
	dropped := make([][]uint64, len(sketches))
	for t := range sketches {
		info, err := readSketchInfo(sketches[t])
		if err != nil {
			return fmt.Errorf("dedup: sketch task %d is not finished: %w", t, err)
		}
		bits := make([]uint64, (info.Rows+63)/64)
		if err := mergeDecisionLines(ctx, decisionDirs, t, func(_ []byte, l *decisionLine) error {
			if l.Row < 0 || l.Row >= info.Rows {
				return fmt.Errorf("dedup: decision for row %d of sketch task %d, which has %d", l.Row, t, info.Rows)
			}
			if l.Reason != "" {
				bits[l.Row/64] |= 1 << (l.Row % 64)
			}
			return nil
		}); err != nil {
			return err
		}
		dropped[t] = bits
	}
	seg, err := commitSegment(ctx, snap, opt, sketches, func(r Ref) bool { return dropped[r.Task()][r.Row()/64]&(1<<(r.Row()%64)) != 0 })
	if err != nil {
		return err
	}
	slog.Info("dedup: store updated", "store", snap.Path, "generation", seg.Gen, "kept", seg.Kept)
	return nil
}

// RouteConfig is a route task: documents of one or more sketch tasks
// routed by the cluster decision.
type RouteConfig struct {
	// Inputs are the input directories and Tasks their sketch task numbers.
	Inputs []string
	Tasks  []int
	// ClusterDir holds the cluster task's decision.
	ClusterDir string
	// DecisionDirs, if set, hold the decision files (a partitioned
	// cluster step's decision tasks) instead of ClusterDir.
	DecisionDirs []string
	// Out receives kept documents, Out/dropped the duplicates.
	Out string
	// Workers route documents (0 = all cores).
	Workers int
	// TargetBytes is the output shard size (0 = default).
	TargetBytes int64
	// Options are the dedup settings.
	Options Options
	// Progress, if set, gets documents and bytes done out of the totals.
	Progress func(docs, bytes, totalDocs, totalBytes int64)
}

// RouteTask writes the kept documents of its inputs to Out and the
// dropped ones to Out/dropped with their reason, similarity to the
// survivor and dup_of, resuming a killed attempt (shards.RunDocStage).
// Its memory holds the decisions of its documents that are in a cluster.
func RouteTask(ctx context.Context, cfg RouteConfig) (*shards.Stats, error) {
	decs := map[int64]Decision{}
	h := sha256.New()
	var offset int64
	dirs := cfg.DecisionDirs
	if dirs == nil {
		dirs = []string{cfg.ClusterDir}
	}
	for i, in := range cfg.Inputs {
		// The digest of the decision files' bytes, merged: the same for
		// any partitioning of the cluster step.
		td, err := readDecisionsFrom(ctx, dirs, cfg.Tasks[i], h)
		if err != nil {
			return nil, err
		}
		for row, d := range td {
			decs[offset+row] = d
		}
		r, err := shards.OpenDocDirs(in)
		if err != nil {
			return nil, fmt.Errorf("dedup: %w", err)
		}
		offset += r.TotalRows()
		r.Close()
	}
	digest := hex.EncodeToString(h.Sum(nil))
	return shards.RunDocStage(ctx, shards.DocStageConfig{
		Stage:       "dedup",
		Inputs:      cfg.Inputs,
		Out:         cfg.Out,
		Workers:     cfg.Workers,
		TargetBytes: cfg.TargetBytes,
		Settings: struct {
			O         Options `json:"o"`
			Decisions string  `json:"decisions"`
		}{cfg.Options, digest},
		ProcessAt: func(i int64, d *shards.Document) (*shards.Document, error) {
			if dec, ok := decs[i]; ok && dec.Reason != "" {
				d.Drop = &shards.Drop{Reason: dec.Reason, Value: dec.Value, DupOf: dec.DupOf}
			}
			return d, nil
		},
		ObserveAt: func(st *shards.Stats, i int64, in, out *shards.Document) { observe(st, decs, i, in, out) },
		Declare:   Reasons,
		Progress:  cfg.Progress,
	})
}

// observe adds dedup's own statistics for the routed document at input
// position i: the duplicate rate per source, the cluster-size histogram
// (counted at each cluster's first member) and the similarity of near
// duplicates to their survivors.
func observe(st *shards.Stats, decs map[int64]Decision, i int64, in, out *shards.Document) {
	dup := 0.0
	if out.Drop != nil {
		dup = 1
	}
	st.Metric("dedup/dup_rate", "fraction").Add(dup)
	st.Metric("dedup/dup_rate/"+in.Source, "fraction").Add(dup)
	dec, ok := decs[i]
	if !ok {
		return
	}
	if dec.First {
		size := float64(dec.Size)
		st.Histogram("dedup/cluster_size", 2, 34, 32).Add(size)
		st.Metric("dedup/cluster_size", "documents").Add(size)
	}
	if out.Drop != nil && out.Drop.Reason == ReasonMinHash && out.Drop.Value != "" {
		var v float64
		if _, err := fmt.Sscan(out.Drop.Value, &v); err == nil {
			st.Metric("dedup/minhash_similarity", "jaccard").Add(v)
			st.Histogram("dedup/minhash_similarity", 0, 1, 20).Add(v)
		}
	}
	if dec.Similarity != "" {
		st.Metric("dedup/verify_kept", "documents").Add(1)
	}
}

// ClusterReport is ClustersName's content.
type ClusterReport struct {
	Summary  Summary         `json:"summary"`
	Clusters []ReportCluster `json:"largest_clusters"`
}

// ReportCluster is one cluster in the report.
type ReportCluster struct {
	Survivor string         `json:"survivor"`
	Stored   bool           `json:"stored_survivor,omitempty"`
	Size     int            `json:"size"`
	Members  []ReportMember `json:"members"`
}

// ReportMember is one member of a reported cluster.
type ReportMember struct {
	ID        string `json:"id"`
	Source    string `json:"source,omitempty"`
	URL       string `json:"url,omitempty"`
	FirstLine string `json:"first_line"`
	Reason    string `json:"reason,omitempty"`
	Value     string `json:"value,omitempty"`
}

// WriteClusterReport writes ClustersName into dir: the largest clusters
// of res with the ids, URLs and first lines of their members, read again
// from inputs (the run's input directories, in order), only as far as the
// last member each input holds.
func WriteClusterReport(ctx context.Context, inputs []string, res *Result, dir string, top, maxMembers int) error {
	if top <= 0 {
		top = 20
	}
	if maxMembers <= 0 {
		maxMembers = 10
	}
	rep := ClusterReport{Summary: res.Summary, Clusters: []ReportCluster{}}
	want := map[int64][2]int{} // position -> report cluster, member slot
	for _, ci := range res.LargestClusters(top) {
		c := res.Clusters[ci]
		rc := ReportCluster{Survivor: c.Survivor, Stored: c.Stored, Size: c.Size}
		members := c.Members
		if len(members) > maxMembers {
			members = members[:maxMembers]
		}
		rc.Members = make([]ReportMember, len(members))
		for j, m := range members {
			want[m] = [2]int{len(rep.Clusters), j}
		}
		rep.Clusters = append(rep.Clusters, rc)
	}
	if len(want) > 0 {
		positions := make([]int64, 0, len(want))
		for p := range want {
			positions = append(positions, p)
		}
		slices.Sort(positions)
		var offset int64
		k := 0
		for _, in := range inputs {
			r, err := shards.OpenDocDirs(in)
			if err != nil {
				return fmt.Errorf("dedup: %w", err)
			}
			rows := r.TotalRows()
			for i := offset; k < len(positions) && positions[k] < offset+rows; i++ {
				if (i-offset)%4096 == 0 {
					if err := ctx.Err(); err != nil {
						r.Close()
						return err
					}
				}
				doc, err := r.Next()
				if err != nil {
					r.Close()
					if errors.Is(err, io.EOF) {
						err = io.ErrUnexpectedEOF
					}
					return fmt.Errorf("dedup: cluster report: %s: %w", in, err)
				}
				if i != positions[k] {
					continue
				}
				k++
				slot := want[i]
				dec := res.Decisions[i]
				rep.Clusters[slot[0]].Members[slot[1]] = ReportMember{ID: doc.ID, Source: doc.Source, URL: doc.URL,
					FirstLine: firstLine(doc.Text, 120), Reason: dec.Reason, Value: dec.Value}
			}
			r.Close()
			offset += rows
		}
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return shards.WriteFileAtomic(filepath.Join(dir, ClustersName), append(b, '\n'))
}

func copyFileAtomic(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("dedup: %w", err)
	}
	defer in.Close()
	f, err := shards.CreateAtomic(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, in); err != nil {
		f.Abort()
		return fmt.Errorf("dedup: %s: %w", dst, err)
	}
	return f.Commit()
}

// ReadDecisions reads the decisions of a finished output (Run's out):
// for each input directory, by row, every document in a cluster, kept or
// dropped.
func ReadDecisions(out string) ([]map[int64]Decision, error) {
	var decs []map[int64]Decision
	for t := 0; ; t++ {
		td, err := readTaskDecisions(filepath.Join(out, DecisionsDir), t)
		if errors.Is(err, os.ErrNotExist) {
			return decs, nil
		}
		if err != nil {
			return nil, err
		}
		decs = append(decs, td)
	}
}
