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

func decisionFile(task int) string { return fmt.Sprintf("dec-%05d.jsonl", task) }

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
	// TextPairs and URLPairs, if set, are the pair files to read instead
	// of the bucket tasks': one partition's components, from the join
	// after the components step (ComponentsJoinTask, JoinedPairs).
	TextPairs, URLPairs []string
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
		O   Options  `json:"o"`
		Gen string   `json:"gen"`
		Top int      `json:"top,omitempty"`
		In  []string `json:"in,omitempty"`
	}{opt, cfg.Snapshot.identity(), top, append(slices.Clone(cfg.TextPairs), cfg.URLPairs...)}, append(sketchFingerprints(cfg.Sketches), bfps...)...)
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

	// Union-find over the pairs' documents only: the text graph (exact
	// and verified MinHash pairs), the URL graph, and their union, which
	// makes the reported clusters.
	var uf unionFind
	var ufText, ufURL parents
	node := map[Ref]int{}
	nodeOf := func(r Ref) int {
		if n, ok := node[r]; ok {
			return n
		}
		n := uf.add(r)
		ufText = append(ufText, int32(n))
		ufURL = append(ufURL, int32(n))
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
	}
	textFiles, urlFiles := cfg.TextPairs, cfg.URLPairs
	if textFiles == nil && urlFiles == nil {
		for _, b := range cfg.Buckets {
			textFiles = append(textFiles, filepath.Join(b, pairsFile))
			urlFiles = append(urlFiles, filepath.Join(b, urlPairsFile))
		}
	}
	for _, path := range textFiles {
		if err := readPairs(ctx, path, func(a, c Ref) {
			na, nc := nodeOf(a), nodeOf(c)
			uf.union(na, nc)
			ufText.union(na, nc)
		}); err != nil {
			return nil, err
		}
	}
	for _, path := range urlFiles {
		if err := readPairs(ctx, path, func(a, c Ref) {
			na, nc := nodeOf(a), nodeOf(c)
			uf.union(na, nc)
			ufURL.union(na, nc)
		}); err != nil {
			return nil, err
		}
	}
	// Nodes by cluster: sorted by (the cluster's first reference, the
	// member's), so that each cluster is a run in reference order and the
	// clusters come in the order of their first member.
	node = nil
	first := make([]Ref, len(uf.parent))
	for i := range first {
		first[i] = ^Ref(0)
	}
	for i := range uf.parent {
		r := uf.find(i)
		first[r] = min(first[r], uf.ref[i])
	}
	order := make([]int32, len(uf.parent))
	for i := range order {
		order[i] = int32(i)
	}
	firstOf := func(i int32) Ref { return first[uf.find(int(i))] }
	slices.SortFunc(order, func(a, b int32) int {
		if c := cmp.Compare(firstOf(a), firstOf(b)); c != 0 {
			return c
		}
		return cmp.Compare(uf.ref[a], uf.ref[b])
	})

	ds := newDocSet(opt.Perms, cfg.Sketches, cfg.Snapshot)
	defer ds.close()
	dw := newDecisionWriters(cfg.Dir, len(cfg.Sketches))
	defer dw.abort()
	cd := &clusterDecider{opt: opt, ds: ds, scratch: make([]byte, 8*opt.Perms), sig: make([]uint64, opt.Perms)}
	nclusters := 0
	for lo := 0; lo < len(order); {
		hi := lo
		f0 := firstOf(order[lo])
		for hi < len(order) && firstOf(order[hi]) == f0 {
			hi++
		}
		idx := order[lo:hi]
		lo = hi
		if f0.Stored() { // a cluster of stored documents only decides nothing
			continue
		}
		ci := nclusters
		nclusters++
		if ci%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		m := make([]Ref, len(idx))
		textRoot := make([]int32, len(idx))
		urlRoot := make([]int32, len(idx))
		for i, n := range idx {
			m[i] = uf.ref[n]
			textRoot[i] = ufText.find(n)
			urlRoot[i] = ufURL.find(n)
		}
		decs, keep, err := cd.decide(m, textRoot, urlRoot)
		if err != nil {
			return nil, err
		}
		sm := cd.metas[keep]
		cl := Cluster{Survivor: sm.ID, Stored: m[keep].Stored(), Size: len(m)}
		// The cluster's number in the decision files: the input position
		// of its first member (m[0]: stored references sort last), a
		// function of the data whatever the partitioning.
		clusterPos := offsets[m[0].Task()] + m[0].Row()
		firstMember := true
		for i, r := range m {
			if r.Stored() {
				continue
			}
			pos := offsets[r.Task()] + r.Row()
			cl.Members = append(cl.Members, pos)
			dec := decs[i]
			dec.Cluster, dec.First = ci, firstMember
			if firstMember {
				dec.Size = len(m)
			}
			firstMember = false
			if dec.Reason != "" {
				res.Summary.Dropped++
				if cd.dupOfStored[i] {
					switch dec.Reason {
					case ReasonExact:
						res.Summary.StoreExact++
					case ReasonURL:
						res.Summary.StoreURL++
					default:
						res.Summary.StoreMinHash++
					}
				}
			} else if dec.Similarity != "" {
				res.Summary.VerifyKept++
			}
			fileDec := dec
			fileDec.Cluster = int(clusterPos)
			if err := dw.write(r.Task(), r.Row(), &fileDec); err != nil {
				return nil, err
			}
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
	if err := dw.commit(); err != nil {
		return nil, err
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
	path := filepath.Join(dir, decisionFile(task))
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	defer f.Close()
	out := map[int64]Decision{}
	dec := json.NewDecoder(bufio.NewReaderSize(f, 256<<10))
	for n := 0; ; n++ {
		var l decisionLine
		if err := dec.Decode(&l); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("dedup: %s: decision %d: %w", path, n, err)
		}
		l.internReason()
		out[l.Row] = l.Decision
	}
}

// decisionLine is one line of a decision file.
type decisionLine struct {
	Row int64 `json:"row"`
	Decision
}

// decisionWriters write the decision files of a cluster task, one JSON
// line a decision, keeping at most maxDocFiles open (a file closed to open
// another is appended to later).
type decisionWriters struct {
	dir   string
	tasks int
	open  map[int]*decisionFileWriter
	tick  uint64
	made  []bool
}

type decisionFileWriter struct {
	f    *os.File
	w    *bufio.Writer
	used uint64
}

func newDecisionWriters(dir string, tasks int) *decisionWriters {
	return &decisionWriters{dir: dir, tasks: tasks, open: map[int]*decisionFileWriter{}, made: make([]bool, tasks)}
}

func (d *decisionWriters) tmp(task int) string {
	return filepath.Join(d.dir, decisionFile(task)+".tmp")
}

func (d *decisionWriters) closeOne(task int) error {
	w := d.open[task]
	delete(d.open, task)
	if err := w.w.Flush(); err != nil {
		w.f.Close()
		return err
	}
	return w.f.Close()
}

func (d *decisionWriters) write(task int, row int64, dec *Decision) error {
	d.tick++
	w, ok := d.open[task]
	if !ok {
		if len(d.open) >= maxDocFiles {
			old, oldest := -1, ^uint64(0)
			for t, ow := range d.open {
				if ow.used < oldest {
					old, oldest = t, ow.used
				}
			}
			if err := d.closeOne(old); err != nil {
				return err
			}
		}
		f, err := os.OpenFile(d.tmp(task), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("dedup: %w", err)
		}
		w = &decisionFileWriter{f: f, w: bufio.NewWriterSize(f, 32<<10)}
		d.open[task] = w
		d.made[task] = true
	}
	w.used = d.tick
	b, err := json.Marshal(decisionLine{Row: row, Decision: *dec})
	if err != nil {
		return err
	}
	if _, err := w.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("dedup: %s: %w", d.tmp(task), err)
	}
	return nil
}

// commit closes every file, creates the empty ones and renames them into
// place.
func (d *decisionWriters) commit() error {
	for t := range d.open {
		if err := d.closeOne(t); err != nil {
			return err
		}
	}
	for t := 0; t < d.tasks; t++ {
		if !d.made[t] {
			if err := os.WriteFile(d.tmp(t), nil, 0o644); err != nil {
				return fmt.Errorf("dedup: %w", err)
			}
		}
		f, err := os.OpenFile(d.tmp(t), os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("dedup: %w", err)
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("dedup: %w", err)
		}
		if err := os.Rename(d.tmp(t), filepath.Join(d.dir, decisionFile(t))); err != nil {
			return fmt.Errorf("dedup: %w", err)
		}
	}
	return syncDir(d.dir)
}

func (d *decisionWriters) abort() {
	for _, w := range d.open {
		w.f.Close()
	}
	d.open = map[int]*decisionFileWriter{}
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

// survivor picks the member to keep (an index into m): see prefer.
func survivor(m []Ref, metas []*docMeta) int {
	best := 0
	for i := 1; i < len(m); i++ {
		if prefer(m[i], m[best], metas[i], metas[best]) < 0 {
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

// parents is a disjoint-set forest over node numbers (path halving).
type parents []int32

func (p parents) find(i int32) int32 {
	for p[i] != i {
		p[i] = p[p[i]]
		i = p[i]
	}
	return i
}

func (p parents) union(a, b int) {
	ra, rb := p.find(int32(a)), p.find(int32(b))
	if ra != rb {
		p[max(ra, rb)] = min(ra, rb)
	}
}

// clusterDecider decides the members of one cluster (a component of the
// union of the text and URL graphs).
type clusterDecider struct {
	opt     Options
	ds      *docSet
	scratch []byte
	sig     []uint64
	// Per member of the cluster being decided.
	metas       []*docMeta
	dupOfStored []bool
	keptSigs    [][]uint64
}

// decide returns the decision of every member of m (in reference order;
// textRoot and urlRoot name each member's text cluster and URL group) and
// the index of the cluster's reported survivor. URL dedup comes first: of
// the documents sharing a URL the preferred one (see prefer) is kept and
// the others are dropped as dedup:url with value 1. Then each text cluster
// (a component of the exact and MinHash pairs) keeps its preferred member
// that URL dedup did not drop; a URL-dropped member still joins its text
// cluster (its text was read), but neither survives nor is decided by it.
// By default every other member of a text cluster is dropped as a
// duplicate of its survivor (dedup:exact with value 1 when their exact
// hashes agree, else dedup:minhash with their estimated similarity). With
// Verify, members are taken in order of preference and each is dropped
// only when its exact hash equals, or its estimated similarity reaches the
// threshold to, a member already kept (the one it is most similar to, in
// dup_of, with that similarity), else kept: no two kept members of a
// cluster are similar, and no member is dropped for a document it is not
// similar to.
func (cd *clusterDecider) decide(m []Ref, textRoot, urlRoot []int32) ([]Decision, int, error) {
	n := len(m)
	cd.metas = make([]*docMeta, n)
	cd.dupOfStored = make([]bool, n)
	for i, r := range m {
		var err error
		if cd.metas[i], err = cd.ds.meta(r); err != nil {
			return nil, 0, err
		}
	}
	decs := make([]Decision, n)
	better := func(i, j int) int { return prefer(m[i], m[j], cd.metas[i], cd.metas[j]) }
	groups := func(root []int32) [][]int {
		byRoot := map[int32][]int{}
		var roots []int32
		for i, r := range root {
			if _, ok := byRoot[r]; !ok {
				roots = append(roots, r)
			}
			byRoot[r] = append(byRoot[r], i)
		}
		out := make([][]int, 0, len(roots))
		for _, r := range roots {
			if g := byRoot[r]; len(g) > 1 {
				out = append(out, g)
			}
		}
		return out
	}
	urlDropped := make([]bool, n)
	if cd.opt.URL {
		for _, g := range groups(urlRoot) {
			slices.SortFunc(g, better)
			s := g[0]
			for _, i := range g[1:] {
				if m[i].Stored() {
					continue
				}
				urlDropped[i] = true
				decs[i] = Decision{Reason: ReasonURL, Value: "1", DupOf: cd.metas[s].ID}
				cd.dupOfStored[i] = m[s].Stored()
			}
		}
	}
	for _, g := range groups(textRoot) {
		cand := make([]int, 0, len(g))
		for _, i := range g {
			if !urlDropped[i] {
				cand = append(cand, i)
			}
		}
		if len(cand) < 2 {
			continue
		}
		slices.SortFunc(cand, better)
		var err error
		if cd.opt.Verify == VerifySurvivor {
			err = cd.verify(m, cand, decs)
		} else {
			err = cd.toSurvivor(m, cand, decs)
		}
		if err != nil {
			return nil, 0, err
		}
	}
	keep := -1
	for i := range m {
		if (m[i].Stored() || decs[i].Reason == "") && (keep < 0 || better(i, keep) < 0) {
			keep = i
		}
	}
	if keep < 0 {
		keep = 0
	}
	return decs, keep, nil
}

// toSurvivor drops every member of cand but the first (the survivor) as
// its duplicate.
func (cd *clusterDecider) toSurvivor(m []Ref, cand []int, decs []Decision) error {
	s := cand[0]
	sm := cd.metas[s]
	var survSig []uint64
	if cd.opt.MinHash && sm.HasSig {
		survSig = make([]uint64, cd.opt.Perms)
		if _, err := cd.ds.sig(m[s], survSig, cd.scratch); err != nil {
			return err
		}
	}
	for _, i := range cand[1:] {
		if m[i].Stored() {
			continue
		}
		mm := cd.metas[i]
		dec := Decision{DupOf: sm.ID}
		cd.dupOfStored[i] = m[s].Stored()
		switch {
		case !cd.opt.MinHash || (cd.opt.Exact && mm.Exact == sm.Exact):
			dec.Reason, dec.Value = ReasonExact, "1"
		default:
			dec.Reason = ReasonMinHash
			if mm.HasSig && survSig != nil {
				if _, err := cd.ds.sig(m[i], cd.sig, cd.scratch); err != nil {
					return err
				}
				dec.Value = formatSim(Jaccard(cd.sig, survSig))
			}
		}
		decs[i] = dec
	}
	return nil
}

// verify decides cand (in order of preference) against the members kept
// so far: see decide.
func (cd *clusterDecider) verify(m []Ref, cand []int, decs []Decision) error {
	var kept []int
	cd.keptSigs = cd.keptSigs[:0]
	for _, i := range cand {
		mm := cd.metas[i]
		var sig []uint64
		if cd.opt.MinHash && mm.HasSig {
			sig = make([]uint64, cd.opt.Perms)
			if _, err := cd.ds.sig(m[i], sig, cd.scratch); err != nil {
				return err
			}
		}
		if m[i].Stored() {
			kept = append(kept, i)
			cd.keptSigs = append(cd.keptSigs, sig)
			continue
		}
		best, bestJ := -1, -1.0
		for k, j := range kept {
			if cd.opt.Exact && cd.metas[j].Exact == mm.Exact {
				best, bestJ = k, 2 // identical text: beats any similarity
				break
			}
			if sig != nil && cd.keptSigs[k] != nil {
				if s := Jaccard(sig, cd.keptSigs[k]); s > bestJ {
					best, bestJ = k, s
				}
			}
		}
		switch {
		case best >= 0 && bestJ == 2:
			j := kept[best]
			decs[i] = Decision{Reason: ReasonExact, Value: "1", DupOf: cd.metas[j].ID}
			cd.dupOfStored[i] = m[j].Stored()
		case best >= 0 && bestJ >= cd.opt.Threshold:
			j := kept[best]
			decs[i] = Decision{Reason: ReasonMinHash, Value: formatSim(bestJ), DupOf: cd.metas[j].ID}
			cd.dupOfStored[i] = m[j].Stored()
		default:
			if len(kept) > 0 && sig != nil && cd.keptSigs[0] != nil {
				decs[i].Similarity = formatSim(Jaccard(sig, cd.keptSigs[0]))
			} else if len(kept) > 0 {
				decs[i].Similarity = "0.0000"
			}
			kept = append(kept, i)
			cd.keptSigs = append(cd.keptSigs, sig)
		}
	}
	return nil
}

func formatSim(j float64) string { return strconv.FormatFloat(j, 'f', 4, 64) }

// prefer orders two members of a cluster by which to keep (negative: a):
// one kept before (in the store); else the higher quality (scored beats
// unscored); then the smaller id; then the smaller exact hash; then the
// smaller reference. Only the last depends on input order, for documents
// with the same id and text.
func prefer(ra, rb Ref, a, b *docMeta) int {
	if sa, sb := ra.Stored(), rb.Stored(); sa != sb {
		if sa {
			return -1
		}
		return 1
	}
	if !ra.Stored() {
		qa, qb := a.Quality, b.Quality
		if math.IsNaN(qa) != math.IsNaN(qb) {
			if !math.IsNaN(qa) {
				return -1
			}
			return 1
		}
		if !math.IsNaN(qa) && qa != qb {
			if qa > qb {
				return -1
			}
			return 1
		}
	}
	if c := cmp.Compare(a.ID, b.ID); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Exact[0], b.Exact[0]); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Exact[1], b.Exact[1]); c != 0 {
		return c
	}
	return cmp.Compare(ra, rb)
}

// internReason makes the line's reason the package's constant, so that the
// decisions of millions of rows share one string each.
func (l *decisionLine) internReason() {
	switch l.Reason {
	case ReasonExact:
		l.Reason = ReasonExact
	case ReasonURL:
		l.Reason = ReasonURL
	case ReasonMinHash:
		l.Reason = ReasonMinHash
	}
}
