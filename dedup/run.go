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
	"slices"

	"github.com/smelt-dev/smelt/shards"
)

// File names dedup writes into its output directory besides the shards.
const (
	// DecisionsName holds pass 1's decision, reused when a killed run is
	// started again.
	DecisionsName = "dedup_decisions.json"
	// ClustersName holds the largest clusters with ids, URLs and first
	// lines of their members.
	ClustersName = "dedup_clusters.json"
)

// Config describes one dedup run over document-shard directories.
type Config struct {
	// Inputs are finished document-shard directories.
	Inputs []string
	// Out receives kept documents, Out/dropped the duplicates.
	Out string
	// Workers compute sketches and route documents (0 = all cores); the
	// output does not depend on it.
	Workers int
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
	// Progress, if set, is called with documents and bytes done out of the
	// totals, for each of the passes ("sketch", "route").
	Progress func(pass string, docs, bytes, totalDocs, totalBytes int64)
}

// decisionsFile is DecisionsName's content.
type decisionsFile struct {
	Fingerprint string  `json:"fingerprint"`
	Options     Options `json:"options"`
	Store       string  `json:"store,omitempty"`
	// Committed says the kept documents are in the store.
	Committed bool    `json:"committed"`
	Result    *Result `json:"result"`
}

// Run deduplicates cfg.Inputs into cfg.Out: pass 1 sketches every document
// (in parallel, results in input order), decides clusters and survivors
// globally and saves the decision atomically in Out; pass 2 routes each
// document with shards.RunDocStage, dropping duplicates with reason
// dedup:exact, dedup:url or dedup:minhash, the estimated similarity and the
// survivor's id. An id that occurs more than once in the input (the same
// dump ingested twice) takes part in dedup at its first occurrence only;
// every later occurrence is dropped with dedup:repeated_id, value 1 and
// the id itself as DupOf, whatever its text. A killed run started again
// with the same configuration reuses the saved decision and resumes pass 2,
// ending with the same files.
func Run(ctx context.Context, cfg Config) (*shards.Stats, *Result, error) {
	opt := cfg.Options
	if opt == (Options{}) {
		opt = DefaultOptions()
	}
	sk, err := NewSketcher(&opt)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Out == "" {
		return nil, nil, errors.New("dedup: no output directory")
	}
	in, err := shards.OpenDocDirs(cfg.Inputs...)
	if err != nil {
		return nil, nil, fmt.Errorf("dedup: %w", err)
	}
	ids := in.Identity()
	in.Close()
	storeAbs := ""
	if cfg.StorePath != "" {
		if storeAbs, err = filepath.Abs(cfg.StorePath); err != nil {
			return nil, nil, err
		}
	}
	fp, err := shards.Fingerprint("dedup-decision", struct {
		O     Options `json:"o"`
		Store string  `json:"store"`
	}{opt, storeAbs}, ids...)
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

	var store *Store
	if cfg.StorePath != "" {
		if store, err = OpenStore(cfg.StorePath, opt); err != nil {
			return nil, nil, err
		}
		defer store.Close()
	}

	decPath := filepath.Join(cfg.Out, DecisionsName)
	saved, err := loadDecisions(decPath)
	if err != nil {
		return nil, nil, err
	}
	if saved != nil && saved.Fingerprint != fp {
		if _, merr := shards.ReadManifest(cfg.Out); merr == nil {
			return nil, nil, fmt.Errorf("%s holds the finished output of a different dedup run (other inputs or settings): choose a new output directory or remove it", cfg.Out)
		}
		slog.Warn("dedup: decision in output is from other inputs or settings; deciding again", "out", cfg.Out)
		saved = nil
	}
	var ded *Deduper
	var res *Result
	if saved != nil {
		res = saved.Result
		slog.Info("dedup: reusing saved decision", "out", cfg.Out, "dropped", res.Summary.Dropped)
		if store != nil && !saved.Committed {
			// The store still needs this run's kept documents: sketch again
			// (deterministic), but keep the saved decision.
			if ded, err = sketchAll(ctx, cfg, sk, opt); err != nil {
				return nil, nil, err
			}
		}
	} else {
		if ded, err = sketchAll(ctx, cfg, sk, opt); err != nil {
			return nil, nil, err
		}
		slog.Info("dedup: deciding", "documents", ded.Len())
		if res, err = ded.Decide(ctx, store); err != nil {
			return nil, nil, err
		}
		if err := writeClusters(ctx, cfg, res); err != nil {
			return nil, nil, err
		}
		saved = &decisionsFile{Fingerprint: fp, Options: opt, Store: storeAbs, Result: res}
		if err := saveDecisions(decPath, saved); err != nil {
			return nil, nil, err
		}
	}
	decSum, err := decisionsDigest(res)
	if err != nil {
		return nil, nil, err
	}

	var progress func(docs, bytes, totalDocs, totalBytes int64)
	if cfg.Progress != nil {
		progress = func(docs, bytes, totalDocs, totalBytes int64) {
			cfg.Progress("route", docs, bytes, totalDocs, totalBytes)
		}
	}
	st, err := shards.RunDocStage(ctx, shards.DocStageConfig{
		Stage:       "dedup",
		Inputs:      cfg.Inputs,
		Out:         cfg.Out,
		Workers:     cfg.Workers,
		TargetBytes: cfg.TargetBytes,
		Settings: struct {
			O         Options `json:"o"`
			Decisions string  `json:"decisions"`
		}{opt, decSum},
		ProcessAt: func(i int64, d *shards.Document) (*shards.Document, error) {
			if res.IsRepeat(i) {
				d.Drop = &shards.Drop{Reason: ReasonRepeatedID, Value: "1", DupOf: d.ID}
				return d, nil
			}
			if dec, ok := res.Decisions[d.ID]; ok && dec.Reason != "" {
				d.Drop = &shards.Drop{Reason: dec.Reason, Value: dec.Value, DupOf: dec.DupOf}
			}
			return d, nil
		},
		ObserveAt: func(st *shards.Stats, i int64, in, out *shards.Document) { observe(st, res, i, in, out) },
		Declare:   Reasons,
		Progress:  progress,
	})
	if err != nil {
		return nil, nil, err
	}
	if store != nil && !saved.Committed {
		if err := ded.Commit(store, res); err != nil {
			return nil, nil, err
		}
		saved.Committed = true
		if err := saveDecisions(decPath, saved); err != nil {
			return nil, nil, err
		}
		n, _ := store.Len()
		slog.Info("dedup: store updated", "store", cfg.StorePath, "documents", n)
	}
	return st, res, nil
}

// observe adds dedup's own statistics for the routed document at input
// position i: the duplicate rate per source, the cluster-size histogram
// (counted at each cluster's first member, never at a repeated id) and the
// similarity of near duplicates.
func observe(st *shards.Stats, res *Result, i int64, in, out *shards.Document) {
	dup := 0.0
	if out.Drop != nil {
		dup = 1
	}
	st.Metric("dedup/dup_rate", "fraction").Add(dup)
	st.Metric("dedup/dup_rate/"+in.Source, "fraction").Add(dup)
	if res.IsRepeat(i) {
		return // its id's decision belongs to the first occurrence
	}
	dec, ok := res.Decisions[in.ID]
	if !ok {
		return
	}
	if dec.First {
		size := float64(res.Clusters[dec.Cluster].Size)
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
}

// sketchAll is pass 1's parallel part: every document's sketch, added in
// input order.
func sketchAll(ctx context.Context, cfg Config, sk *Sketcher, opt Options) (*Deduper, error) {
	in, err := shards.OpenDocDirs(cfg.Inputs...)
	if err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	defer in.Close()
	totalDocs, totalBytes := in.TotalRows(), in.TotalDataBytes()
	d := NewDeduper(opt)
	type item struct {
		doc *shards.Document
		k   Sketch
	}
	var docs int64
	next := func() (*shards.Document, bool, error) {
		doc, err := in.Next()
		if errors.Is(err, io.EOF) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("dedup: %w", err)
		}
		return doc, true, nil
	}
	f := func(doc *shards.Document) item {
		k := sk.Sketch(doc)
		// Only what the decision needs travels on.
		return item{&shards.Document{ID: doc.ID, Quality: doc.Quality, HasQuality: doc.HasQuality,
			Source: doc.Source, Text: ""}, k}
	}
	emit := func(it item) error {
		docs++
		if cfg.Progress != nil && docs%1024 == 0 {
			cfg.Progress("sketch", docs, totalBytes*docs/max(totalDocs, 1), totalDocs, totalBytes)
		}
		return d.Add(it.doc, it.k)
	}
	if err := shards.OrderedMap(ctx, cfg.Workers, next, f, emit); err != nil {
		return nil, err
	}
	if docs != totalDocs { // OrderedMap may stop early on ctx without an error
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("dedup: sketched %d of %d documents", docs, totalDocs)
	}
	if cfg.Progress != nil {
		cfg.Progress("sketch", docs, totalBytes, totalDocs, totalBytes)
	}
	return d, nil
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

// writeClusters reads the input once more for the members of the largest
// clusters (their ids, URLs and first lines were not kept in pass 1) and
// writes ClustersName atomically.
func writeClusters(ctx context.Context, cfg Config, res *Result) error {
	top, maxMembers := cfg.TopClusters, cfg.MaxMembers
	if top <= 0 {
		top = 20
	}
	if maxMembers <= 0 {
		maxMembers = 10
	}
	rep := ClusterReport{Summary: res.Summary, Clusters: []ReportCluster{}}
	want := map[int64][2]int{} // ordinal -> report cluster, member slot
	for _, ci := range res.LargestClusters(top) {
		c := res.Clusters[ci]
		rc := ReportCluster{Survivor: c.Survivor, Stored: c.Stored, Size: c.Size}
		members := c.Members
		if len(members) > maxMembers {
			members = members[:maxMembers]
		}
		rc.Members = make([]ReportMember, len(members))
		for j, m := range members {
			want[int64(m)] = [2]int{len(rep.Clusters), j}
		}
		rep.Clusters = append(rep.Clusters, rc)
	}
	if len(want) > 0 {
		in, err := shards.OpenDocDirs(cfg.Inputs...)
		if err != nil {
			return fmt.Errorf("dedup: %w", err)
		}
		defer in.Close()
		last := slices.Max(mapsKeys(want))
		for i := int64(0); i <= last; i++ {
			if i%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			doc, err := in.Next()
			if err != nil {
				return fmt.Errorf("dedup: cluster report: %w", err)
			}
			slot, ok := want[i]
			if !ok {
				continue
			}
			dec := res.Decisions[doc.ID]
			rep.Clusters[slot[0]].Members[slot[1]] = ReportMember{ID: doc.ID, Source: doc.Source, URL: doc.URL,
				FirstLine: firstLine(doc.Text, 120), Reason: dec.Reason, Value: dec.Value}
		}
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return shards.WriteFileAtomic(filepath.Join(cfg.Out, ClustersName), append(b, '\n'))
}

func mapsKeys(m map[int64][2]int) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func loadDecisions(path string) (*decisionsFile, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	var f decisionsFile
	if err := json.Unmarshal(b, &f); err != nil || f.Result == nil {
		slog.Warn("dedup: unreadable saved decision; deciding again", "path", path, "err", err)
		return nil, nil
	}
	if f.Result.Decisions == nil {
		f.Result.Decisions = map[string]Decision{}
	}
	return &f, nil
}

func saveDecisions(path string, f *decisionsFile) error {
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("dedup: encode decision: %w", err)
	}
	return shards.WriteFileAtomic(path, b)
}

// decisionsDigest fingerprints the routing: pass 2 resumes only with the
// same decision. Without repeated ids it is the digest of Decisions alone,
// as before repeated ids were routed.
func decisionsDigest(res *Result) (string, error) {
	var v any = res.Decisions // map keys are sorted
	if len(res.Repeated) > 0 {
		v = struct {
			D map[string]Decision `json:"d"`
			R []int64             `json:"r"`
		}{res.Decisions, res.Repeated}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
