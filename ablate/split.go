package ablate

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/smelt-dev/smelt/shards"
)

// Drop reasons of Split: a document routed to the other side.
const (
	// DropHeldOut is a document held out (in the training side's dropped
	// output).
	DropHeldOut = "split/held_out"
	// DropTrain is a document kept for training (in the held-out side's
	// dropped output).
	DropTrain = "split/train"
)

// HeldOut reports whether the document with this id is held out at
// fraction with seed: the first 8 bytes of sha256("smelt-split" seed id),
// as a fraction of 2^64, are below fraction. It depends on nothing but the
// id, so the split is the same across runs, workers and partitionings, and
// a document keeps its side when others are added or removed.
func HeldOut(id string, fraction float64, seed uint64) bool {
	h := sha256.New()
	h.Write([]byte("smelt-split\x00"))
	h.Write([]byte(strconv.FormatUint(seed, 10)))
	h.Write([]byte{0})
	h.Write([]byte(id))
	var sum [sha256.Size]byte
	u := binary.BigEndian.Uint64(h.Sum(sum[:0]))
	return float64(u)/(1<<64) < fraction
}

// SplitOptions configures Split.
type SplitOptions struct {
	// Inputs are finished document-shard directories.
	Inputs []string
	// Fraction of documents held out, in (0, 1); Seed picks which.
	Fraction float64
	Seed     uint64
	// Out receives the training side, HeldOut the held-out side. Each is
	// an ordinary document directory whose dropped/ holds the other side
	// with its reason, so every document is accounted for twice over.
	Out, HeldOut string
	Workers      int
	TargetBytes  int64
}

// Split divides documents by a hash of their id (HeldOut).
func Split(ctx context.Context, opt SplitOptions) (train, held *shards.Stats, err error) {
	if !(opt.Fraction > 0 && opt.Fraction < 1) {
		return nil, nil, fmt.Errorf("split: fraction %v must be in (0, 1)", opt.Fraction)
	}
	if opt.Out == "" || opt.HeldOut == "" || opt.Out == opt.HeldOut {
		return nil, nil, fmt.Errorf("split: need two different outputs, got %q and %q", opt.Out, opt.HeldOut)
	}
	settings := struct {
		Fraction float64 `json:"fraction"`
		Seed     uint64  `json:"seed"`
		Side     string  `json:"side"`
	}{opt.Fraction, opt.Seed, "train"}
	side := func(wantHeld bool) func(*shards.Document) (*shards.Document, error) {
		return func(d *shards.Document) (*shards.Document, error) {
			h := HeldOut(d.ID, opt.Fraction, opt.Seed)
			switch {
			case h && !wantHeld:
				d.Drop = &shards.Drop{Reason: DropHeldOut}
			case !h && wantHeld:
				d.Drop = &shards.Drop{Reason: DropTrain}
			}
			return d, nil
		}
	}
	train, err = shards.RunDocStage(ctx, shards.DocStageConfig{Stage: "split", Inputs: opt.Inputs, Out: opt.Out,
		Workers: opt.Workers, TargetBytes: opt.TargetBytes, Settings: settings, Process: side(false), Declare: []string{DropHeldOut}})
	if err != nil {
		return nil, nil, fmt.Errorf("split: %w", err)
	}
	settings.Side = "held_out"
	held, err = shards.RunDocStage(ctx, shards.DocStageConfig{Stage: "split", Inputs: opt.Inputs, Out: opt.HeldOut,
		Workers: opt.Workers, TargetBytes: opt.TargetBytes, Settings: settings, Process: side(true), Declare: []string{DropTrain}})
	if err != nil {
		return nil, nil, fmt.Errorf("split: %w", err)
	}
	return train, held, nil
}

// Select writes the documents of inputs that keep returns true for into
// out (a document directory; the others go to out/dropped with the reason
// ablate/unselected); key names the selection in the output's fingerprint.
// Documents read from a dropped/ directory have their
// drop cleared when selected.
func Select(ctx context.Context, inputs []string, out string, keep func(*shards.Document) bool, key string, workers int, targetBytes int64) error {
	_, err := shards.RunDocStage(ctx, shards.DocStageConfig{Stage: "select", Inputs: inputs, Out: out, Workers: workers, TargetBytes: targetBytes, Settings: key,
		Process: func(d *shards.Document) (*shards.Document, error) {
			if keep(d) {
				d.Drop = nil
			} else {
				d.Drop = &shards.Drop{Reason: DropUnselected}
			}
			return d, nil
		}, Declare: []string{DropUnselected}})
	return err
}
