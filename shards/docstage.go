package shards

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
)

// DroppedDir is the subdirectory of a stage's output that holds the
// documents it dropped, with their reasons.
const DroppedDir = "dropped"

// DocStageConfig describes a document-to-document stage for RunDocStage.
type DocStageConfig struct {
	// Stage names the stage ("filter", "dedup", ...).
	Stage string
	// Inputs are finished document-shard directories, read in order.
	Inputs []string
	// Out receives the kept documents; Out/dropped the dropped ones.
	Out string
	// Workers run Process in parallel (0 = all cores). Output does not
	// depend on it.
	Workers int
	// TargetBytes is the shard size (0 = DefaultTargetBytes).
	TargetBytes int64
	// Settings are JSON-encoded into the run's fingerprint: a run with other
	// settings or inputs never resumes or reuses this one's output.
	Settings any
	// Process decides one document on a worker goroutine: return it
	// (possibly modified) to keep it, or with Drop set to drop it. An error
	// stops the run.
	Process func(*Document) (*Document, error)
	// ProcessAt, if set, is used instead of Process and also gets the
	// document's 0-based position in the whole input (counting across all
	// of Inputs, in order). Positions do not change when a run resumes, so
	// a stage can route documents by position (two documents with the same
	// id, for instance).
	ProcessAt func(i int64, d *Document) (*Document, error)
	// Observe, if set, is called in input order on one goroutine after each
	// document is routed, for stage-specific statistics.
	Observe func(st *Stats, in, out *Document)
	// ObserveAt, if set, is used instead of Observe and also gets the
	// document's input position (as for ProcessAt).
	ObserveAt func(st *Stats, i int64, in, out *Document)
	// Declare lists the drop reasons the stage can produce, so that they
	// show with zero counts.
	Declare []string
	// Progress, if set, is called in input order with the number of
	// documents and bytes consumed so far out of the totals.
	Progress func(docs, bytes, totalDocs, totalBytes int64)
}

// Fingerprint hashes a stage's name, settings and input identities.
func Fingerprint(stage string, settings any, inputs ...any) (string, error) {
	data, err := json.Marshal(struct {
		Stage    string `json:"stage"`
		Settings any    `json:"settings"`
		Inputs   []any  `json:"inputs"`
	}{stage, settings, inputs})
	if err != nil {
		return "", fmt.Errorf("fingerprint %s settings: %w", stage, err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// RunDocStage streams the documents of cfg.Inputs through cfg.Process (or
// cfg.ProcessAt) with workers, writing kept documents to cfg.Out and dropped
// ones to cfg.Out/dropped. It checkpoints whenever it cuts shards, so a run killed at
// any point and started again with the same configuration ends with the same
// files, byte for byte, as an uninterrupted run. A finished output with the
// same fingerprint is reused as it is.
func RunDocStage(ctx context.Context, cfg DocStageConfig) (*Stats, error) {
	if err := CheckTargetBytes(cfg.TargetBytes); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Stage, err)
	}
	in, err := OpenDocDirs(cfg.Inputs...)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	ids := in.Identity()
	fp, err := Fingerprint(cfg.Stage, struct {
		S      any   `json:"s"`
		Target int64 `json:"target"`
	}{cfg.Settings, cfg.TargetBytes}, ids...)
	if err != nil {
		return nil, err
	}
	dropDir := filepath.Join(cfg.Out, DroppedDir)
	if err := os.MkdirAll(dropDir, 0o755); err != nil {
		return nil, fmt.Errorf("create output: %w", err)
	}
	unlock, err := LockOutput(cfg.Out)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Stage, err)
	}
	defer unlock()
	if m, err := ReadManifest(cfg.Out); err == nil {
		if m.Fingerprint == fp {
			slog.Info("output already complete", "stage", cfg.Stage, "out", cfg.Out)
			return ReadStats(cfg.Out)
		}
		return nil, fmt.Errorf("%s holds the finished output of a different %s run (other inputs or settings): choose a new output directory or remove it", cfg.Out, cfg.Stage)
	}

	st := NewStats(cfg.Stage)
	st.Declare(cfg.Declare, nil)
	var consumed int64
	outputs := map[string][]ShardInfo{}
	cp, err := LoadCheckpoint(cfg.Out)
	if err != nil {
		return nil, err
	}
	if cp != nil && cp.Fingerprint != fp {
		return nil, fmt.Errorf("%s holds an unfinished %s run with other inputs or settings: choose a new output directory or remove it", cfg.Out, cfg.Stage)
	}
	if cp != nil {
		consumed, outputs, st = cp.Consumed, cp.Outputs, cp.Stats
		slog.Info("resuming", "stage", cfg.Stage, "out", cfg.Out, "documents_done", consumed)
	}
	if err := PruneShards(cfg.Out, "part", outputs["kept"]); err != nil {
		return nil, err
	}
	if err := PruneShards(dropDir, "part", outputs["dropped"]); err != nil {
		return nil, err
	}
	if err := in.Skip(consumed); err != nil {
		return nil, err
	}
	kept := NewDocWriter(cfg.Out, DocWriterOptions{TargetBytes: cfg.TargetBytes, Manual: true, FirstIndex: len(outputs["kept"])})
	dropped := NewDocWriter(dropDir, DocWriterOptions{TargetBytes: cfg.TargetBytes, Manual: true, Dropped: true, FirstIndex: len(outputs["dropped"])})
	defer kept.Abort()
	defer dropped.Abort()

	totalDocs, totalBytes := in.TotalRows(), in.TotalDataBytes()
	bytesDone := st.In.Bytes
	checkpoint := func() error {
		if err := kept.Cut(); err != nil {
			return err
		}
		if err := dropped.Cut(); err != nil {
			return err
		}
		return SaveCheckpoint(cfg.Out, &Checkpoint{
			Fingerprint: fp,
			Consumed:    consumed,
			Outputs: map[string][]ShardInfo{
				"kept":    append(append([]ShardInfo(nil), outputs["kept"]...), kept.Shards()...),
				"dropped": append(append([]ShardInfo(nil), outputs["dropped"]...), dropped.Shards()...),
			},
			Stats: st,
		})
	}
	type item struct {
		i int64 // position in the whole input
		d *Document
	}
	type result struct {
		i       int64
		in, out *Document
		err     error
	}
	pos := consumed // next is called in input order, on one goroutine
	next := func() (item, bool, error) {
		d, err := in.Next()
		if errors.Is(err, io.EOF) {
			return item{}, false, nil
		}
		if err != nil {
			return item{}, false, err
		}
		pos++
		return item{pos - 1, d}, true, nil
	}
	process := func(it item) result {
		orig := *it.d
		var out *Document
		var err error
		if cfg.ProcessAt != nil {
			out, err = cfg.ProcessAt(it.i, it.d)
		} else {
			out, err = cfg.Process(it.d)
		}
		return result{i: it.i, in: &orig, out: out, err: err}
	}
	emit := func(r result) error {
		if r.err != nil {
			return fmt.Errorf("%s: document %s: %w", cfg.Stage, r.in.ID, r.err)
		}
		if r.out == nil {
			return fmt.Errorf("%s: document %s: Process returned no document", cfg.Stage, r.in.ID)
		}
		n := DocBytes(r.in)
		st.In.Add(n)
		bytesDone += n
		consumed++
		if r.out.Drop != nil {
			st.Drop(r.out.Drop.Reason, n)
			if err := dropped.Write(r.out); err != nil {
				return err
			}
		} else {
			st.Keep(r.out)
			if err := kept.Write(r.out); err != nil {
				return err
			}
		}
		if cfg.ObserveAt != nil {
			cfg.ObserveAt(st, r.i, r.in, r.out)
		} else if cfg.Observe != nil {
			cfg.Observe(st, r.in, r.out)
		}
		if cfg.Progress != nil {
			cfg.Progress(consumed, bytesDone, totalDocs, totalBytes)
		}
		if kept.Full() || dropped.Full() {
			return checkpoint()
		}
		return nil
	}
	if err := OrderedMap(ctx, cfg.Workers, next, process, emit); err != nil {
		return nil, err
	}
	// OrderedMap can end without an error when ctx is cancelled while its
	// reader queues the last documents: never finish a cut-short run.
	if consumed != totalDocs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s: routed %d of %d documents", cfg.Stage, consumed, totalDocs)
	}
	if err := kept.Close(); err != nil {
		return nil, err
	}
	if err := dropped.Close(); err != nil {
		return nil, err
	}
	if err := st.Balanced(); err != nil {
		return nil, err
	}
	keptShards := append(outputs["kept"], kept.Shards()...)
	dropShards := append(outputs["dropped"], dropped.Shards()...)
	if err := WriteStats(cfg.Out, st); err != nil {
		return nil, err
	}
	if err := WriteManifest(dropDir, &Manifest{Kind: KindDropped, Stage: cfg.Stage, Fingerprint: fp,
		Shards: dropShards, Totals: SumShards(dropShards)}); err != nil {
		return nil, err
	}
	if err := WriteManifest(cfg.Out, &Manifest{Kind: KindDocuments, Stage: cfg.Stage, Fingerprint: fp,
		Shards: keptShards, Totals: SumShards(keptShards), Sources: SourceTotals(st)}); err != nil {
		return nil, err
	}
	return st, RemoveCheckpoint(cfg.Out)
}

// SourceTotals converts per-source kept counts into manifest totals.
func SourceTotals(st *Stats) map[string]Totals {
	if len(st.Sources) == 0 {
		return nil
	}
	m := make(map[string]Totals, len(st.Sources))
	for k, v := range st.Sources {
		m[k] = Totals{Rows: v.Docs, DataBytes: v.Bytes}
	}
	return m
}
