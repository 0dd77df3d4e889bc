package dedup

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/smelt-dev/smelt/shards"
)

// Files of the cluster task's directory.
const (
	resultFile  = "result.json"
	clusterDone = "cluster.json"
)

func decisionFile(task int) string { return fmt.Sprintf("dec-%05d.json", task) }

// clusterInfo is clusterDone's content, written last.
type clusterInfo struct {
	Fingerprint string `json:"fingerprint"`
	// Snapshot is the store generation the decision was made on.
	Snapshot string `json:"snapshot"`
	// Committed says the kept documents are in the store.
	Committed bool `json:"committed,omitempty"`
}

// ClusterConfig is the cluster task: the whole decision of a run.
type ClusterConfig struct {
	// Sketches and Buckets are this run's finished task directories.
	Sketches, Buckets []string
	// Snapshot, if set, is the store generation to decide against.
	Snapshot *Snapshot
	// Dir receives the decision.
	Dir string
	// Options are the dedup settings (validated).
	Options Options
	// Full keeps every cluster and decision in the Result (Run's caller
	// wants them); otherwise it holds the summary and the TopClusters
	// largest clusters (0 = 20) with their members' decisions, so that the
	// task's memory holds the decisions once, in the per-task files.
	Full        bool
	TopClusters int
}

// taskDecisions is a decision file: the decisions of one sketch task's
// documents that are in a cluster, by row.
type taskDecisions struct {
	Rows      []int64    `json:"rows"`
	Decisions []Decision `json:"decisions"`
}

// ClusterTask runs the cluster task: union-find over the bucket tasks' pairs
// (memory grows with the documents that have a duplicate, not with the
// input), one survivor per cluster (a document kept before, in the store;
// else the highest quality, scored beating unscored; then the smallest id;
// then the smaller reference) and a decision for every other member of
// this run: dedup:exact when its exact hash is the survivor's, dedup:url
// when its URL is, else dedup:minhash with the estimated similarity to the
// survivor. With Verify "survivor", a MinHash member is dropped only when
// that similarity reaches the threshold; the others are kept. The
// decisions are written per sketch task, for the route tasks.
func ClusterTask(ctx context.Context, cfg ClusterConfig) (*Result, error) {
	opt := cfg.Options
	var bfps []any
	for _, b := range cfg.Buckets {
		raw, err := os.ReadFile(filepath.Join(b, bucketDone))
		if err != nil {
			return nil, fmt.Errorf("dedup: bucket task %s is not finished: %w", b, err)
		}
		var bi bucketInfo
		if err := json.Unmarshal(raw, &bi); err != nil {
			return nil, fmt.Errorf("dedup: %s: %w", b, err)
		}
		bfps = append(bfps, bi.Fingerprint)
	}
	top := cfg.TopClusters
	if top <= 0 {
		top = 20
	}
	if cfg.Full {
		top = 0
	}
	fp, err := shards.Fingerprint("dedup-cluster", struct {
		O   Options `json:"o"`
		Gen string  `json:"gen"`
		Top int     `json:"top,omitempty"`
	}{opt, cfg.Snapshot.identity(), top}, append(sketchFingerprints(cfg.Sketches), bfps...)...)
	if err != nil {
		return nil, err
	}
	if info, err := readClusterInfo(cfg.Dir); err == nil && info.Fingerprint == fp {
		return readResult(cfg.Dir)
	}
	if err := os.RemoveAll(cfg.Dir); err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	res := &Result{Decisions: map[int64]Decision{}, Summary: Summary{Bands: opt.Bands, Rows: opt.Rows}}
	offsets := make([]int64, len(cfg.Sketches)+1)
	for t, d := range cfg.Sketches {
		info, err := readSketchInfo(d)
		if err != nil {
			return nil, fmt.Errorf("dedup: sketch task %d is not finished: %w", t, err)
		}
		offsets[t+1] = offsets[t] + info.Rows
		res.Summary.Signatures += info.Signatures
		res.Summary.DataBytes += info.DataBytes
	}
	res.Summary.Documents = offsets[len(cfg.Sketches)]
	res.Summary.StoreDocuments = cfg.Snapshot.Docs()

	// Union-find over the pairs' documents only.
	var uf unionFind
	node := map[Ref]int{}
	nodeOf := func(r Ref) int {
		if n, ok := node[r]; ok {
			return n
		}
		n := uf.add(r)
		node[r] = n
		return n
	}
	for _, b := range cfg.Buckets {
		raw, _ := os.ReadFile(filepath.Join(b, bucketDone))
		var bi bucketInfo
		_ = json.Unmarshal(raw, &bi)
		res.Summary.ExactPairs += bi.ExactPairs
		res.Summary.URLPairs += bi.URLPairs
		res.Summary.CandidatePairs += bi.CandidatePairs
		res.Summary.VerifiedPairs += bi.VerifiedPairs
		res.Summary.LargestBucket = max(res.Summary.LargestBucket, bi.MaxGroup)
		if err := readPairs(ctx, filepath.Join(b, pairsFile), func(a, c Ref) {
			uf.union(nodeOf(a), nodeOf(c))
		}); err != nil {
			return nil, err
		}
	}
	// Members by cluster: (the cluster's first reference, the member)
	// sorted, so that each cluster is a run in reference order and the
	// clusters come in the order of their first member; 16 bytes a
	// document, no map.
	node = nil
	first := make([]Ref, len(uf.parent))
	for i := range first {
		first[i] = ^Ref(0)
	}
	for i := range uf.parent {
		r := uf.find(i)
		first[r] = min(first[r], uf.ref[i])
	}
	members := make([][2]Ref, len(uf.parent))
	for i := range uf.parent {
		members[i] = [2]Ref{first[uf.find(i)], uf.ref[i]}
	}
	first = nil
	uf = unionFind{}
	slices.SortFunc(members, func(a, b [2]Ref) int {
		if c := cmp.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return cmp.Compare(a[1], b[1])
	})
	var clusters [][]Ref // views into one array
	flat := make([]Ref, len(members))
	for i := 0; i < len(members); {
		j := i
		for j < len(members) && members[j][0] == members[i][0] {
			flat[j] = members[j][1]
			j++
		}
		if !members[i][0].Stored() { // a cluster of stored documents only decides nothing
			clusters = append(clusters, flat[i:j:j])
		}
		i = j
	}
	members = nil

	ds := newDocSet(opt.Perms, cfg.Sketches, cfg.Snapshot)
	defer ds.close()
	perTask := make([]taskDecisions, len(cfg.Sketches))
	scratch := make([]byte, 8*opt.Perms)
	survSig, sig := make([]uint64, opt.Perms), make([]uint64, opt.Perms)
	nclusters := 0
	for ci, m := range clusters {
		nclusters++
		if ci%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		metas := make([]*docMeta, len(m))
		for i, r := range m {
			if metas[i], err = ds.meta(r); err != nil {
				return nil, err
			}
		}
		s := survivor(m, metas)
		sm := metas[s]
		cl := Cluster{Survivor: sm.ID, Stored: m[s].Stored(), Size: len(m)}
		hasSurvSig := false
		if opt.MinHash && sm.HasSig {
			if hasSurvSig, err = ds.sig(m[s], survSig, scratch); err != nil {
				return nil, err
			}
		}
		first := true
		for i, r := range m {
			if r.Stored() {
				continue
			}
			pos := offsets[r.Task()] + r.Row()
			cl.Members = append(cl.Members, pos)
			dec := Decision{Cluster: ci, First: first}
			if first {
				dec.Size = len(m)
			}
			first = false
			if i != s {
				mm := metas[i]
				dec.DupOf = sm.ID
				switch {
				case opt.Exact && mm.Exact == sm.Exact:
					dec.Reason, dec.Value = ReasonExact, "1"
				case opt.URL && mm.URL != 0 && mm.URL == sm.URL:
					dec.Reason, dec.Value = ReasonURL, "1"
				case !opt.MinHash:
					// Joined only through exact or URL edges with another
					// member: name the edge kind.
					dec.Reason, dec.Value = ReasonURL, "1"
					if !opt.URL {
						dec.Reason = ReasonExact
					}
				default:
					dec.Reason = ReasonMinHash
					j := math.NaN()
					if mm.HasSig && hasSurvSig {
						if _, err := ds.sig(r, sig, scratch); err != nil {
							return nil, err
						}
						j = Jaccard(sig, survSig)
						dec.Value = strconv.FormatFloat(j, 'f', 4, 64)
					}
					if opt.Verify == VerifySurvivor && !(j >= opt.Threshold) {
						// Too far from the survivor (a chain): kept.
						dec.Reason, dec.DupOf = "", ""
						dec.Similarity = dec.Value
						dec.Value = ""
						res.Summary.VerifyKept++
					}
				}
				if dec.Reason != "" {
					res.Summary.Dropped++
					if cl.Stored {
						switch dec.Reason {
						case ReasonExact:
							res.Summary.StoreExact++
						case ReasonURL:
							res.Summary.StoreURL++
						default:
							res.Summary.StoreMinHash++
						}
					}
				}
			}
			td := &perTask[r.Task()]
			td.Rows = append(td.Rows, r.Row())
			td.Decisions = append(td.Decisions, dec)
			if top == 0 {
				res.Decisions[pos] = dec
			} else {
				cl.decs = append(cl.decs, dec)
			}
		}
		res.Clusters = append(res.Clusters, cl)
		if top > 0 && len(res.Clusters) >= 2*top+64 {
			res.Clusters = keepLargest(res.Clusters, top)
		}
	}
	res.Summary.Clusters = int64(nclusters)
	if top > 0 {
		res.Clusters = keepLargest(res.Clusters, top)
		// The decisions of the kept clusters' members, for the report.
		for i := range res.Clusters {
			c := &res.Clusters[i]
			for k, pos := range c.Members {
				dec := c.decs[k]
				dec.Cluster = i
				res.Decisions[pos] = dec
			}
			c.decs = nil
		}
	}
	for t := range perTask {
		if perTask[t].Rows == nil {
			perTask[t] = taskDecisions{Rows: []int64{}, Decisions: []Decision{}}
		}
		b, err := json.Marshal(perTask[t])
		if err != nil {
			return nil, err
		}
		if err := shards.WriteFileAtomic(filepath.Join(cfg.Dir, decisionFile(t)), b); err != nil {
			return nil, err
		}
	}
	b, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	if err := shards.WriteFileAtomic(filepath.Join(cfg.Dir, resultFile), b); err != nil {
		return nil, err
	}
	info := clusterInfo{Fingerprint: fp, Snapshot: cfg.Snapshot.identity()}
	b, _ = json.Marshal(info)
	if err := shards.WriteFileAtomic(filepath.Join(cfg.Dir, clusterDone), b); err != nil {
		return nil, err
	}
	return res, nil
}

// keepLargest returns the k largest clusters (ties by survivor id), in
// their order.
func keepLargest(cs []Cluster, k int) []Cluster {
	r := Result{Clusters: cs}
	idx := r.LargestClusters(k)
	slices.Sort(idx)
	out := make([]Cluster, len(idx))
	for i, j := range idx {
		out[i] = cs[j]
	}
	return out
}

func readClusterInfo(dir string) (*clusterInfo, error) {
	b, err := os.ReadFile(filepath.Join(dir, clusterDone))
	if err != nil {
		return nil, err
	}
	var info clusterInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

func readResult(dir string) (*Result, error) {
	b, err := os.ReadFile(filepath.Join(dir, resultFile))
	if err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	var res Result
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("dedup: %s: %w", filepath.Join(dir, resultFile), err)
	}
	if res.Decisions == nil {
		res.Decisions = map[int64]Decision{}
	}
	return &res, nil
}

// readTaskDecisions reads the decisions of one sketch task, by row.
func readTaskDecisions(dir string, task int) (map[int64]Decision, error) {
	b, err := os.ReadFile(filepath.Join(dir, decisionFile(task)))
	if err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	var td taskDecisions
	if err := json.Unmarshal(b, &td); err != nil || len(td.Rows) != len(td.Decisions) {
		return nil, fmt.Errorf("dedup: %s: corrupt decision file (%v)", filepath.Join(dir, decisionFile(task)), err)
	}
	out := make(map[int64]Decision, len(td.Rows))
	for i, r := range td.Rows {
		out[r] = td.Decisions[i]
	}
	return out, nil
}

// readPairs streams a pairs file.
func readPairs(ctx context.Context, path string, f func(a, b Ref)) error {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("dedup: %w", err)
	}
	defer fh.Close()
	r := bufio.NewReaderSize(fh, 256<<10)
	var b [16]byte
	for n := 0; ; n++ {
		if n%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if _, err := io.ReadFull(r, b[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("dedup: %s pair %d: %w", path, n, err)
		}
		f(Ref(binary.LittleEndian.Uint64(b[0:])), Ref(binary.LittleEndian.Uint64(b[8:])))
	}
}

// survivor picks the member to keep (an index into m): one kept before
// (in the store), else the highest quality (scored beats unscored), then
// the smallest id, then the smaller reference (m is in reference order).
func survivor(m []Ref, metas []*docMeta) int {
	best := 0
	for i := 1; i < len(m); i++ {
		bi, bb := m[i].Stored(), m[best].Stored()
		if bi != bb {
			if bi {
				best = i
			}
			continue
		}
		if !bi {
			qi, qb := metas[i].Quality, metas[best].Quality
			if math.IsNaN(qi) != math.IsNaN(qb) {
				if !math.IsNaN(qi) {
					best = i
				}
				continue
			}
			if !math.IsNaN(qi) && qi != qb {
				if qi > qb {
					best = i
				}
				continue
			}
		}
		if metas[i].ID < metas[best].ID {
			best = i
		}
	}
	return best
}

// unionFind is a disjoint-set forest over the documents of the pairs (path
// halving, union by size).
type unionFind struct {
	parent []int
	size   []int
	ref    []Ref
}

func (u *unionFind) add(r Ref) int {
	i := int(len(u.parent))
	u.parent = append(u.parent, i)
	u.size = append(u.size, 1)
	u.ref = append(u.ref, r)
	return i
}

func (u *unionFind) find(i int) int {
	for u.parent[i] != i {
		u.parent[i] = u.parent[u.parent[i]]
		i = u.parent[i]
	}
	return i
}

func (u *unionFind) union(a, b int) {
	a, b = u.find(a), u.find(b)
	if a == b {
		return
	}
	if u.size[a] < u.size[b] {
		a, b = b, a
	}
	u.parent[b] = a
	u.size[a] += u.size[b]
}
