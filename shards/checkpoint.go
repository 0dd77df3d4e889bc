package shards

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// CheckpointName is the file in which a streaming stage records how far it
// got. It is removed when the stage finishes and writes its manifest.
const CheckpointName = "_checkpoint.json"

// Checkpoint is the resumable state of a streaming stage at a point where
// every output had just been cut: nothing unpublished needs to be recovered.
// A resumed run deletes shards that are not listed, skips Consumed input
// items and goes on from there; because shard boundaries depend only on
// content, it ends with the same files as an uninterrupted run.
type Checkpoint struct {
	// Fingerprint identifies the inputs and settings; a checkpoint with a
	// different fingerprint is not resumed.
	Fingerprint string `json:"fingerprint"`
	// Consumed counts input items fully processed.
	Consumed int64 `json:"consumed"`
	// Position is stage-specific resume information.
	Position json.RawMessage `json:"position,omitempty"`
	// Outputs lists, per output directory name, the shards published so far.
	Outputs map[string][]ShardInfo `json:"outputs"`
	// Stats are the stage's statistics up to Consumed.
	Stats *Stats `json:"stats"`
}

// SaveCheckpoint writes cp into dir atomically.
func SaveCheckpoint(dir string, cp *Checkpoint) error {
	data, err := json.Marshal(cp)
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	return WriteFileAtomic(filepath.Join(dir, CheckpointName), data)
}

// LoadCheckpoint reads dir's checkpoint; it returns (nil, nil) when there is none.
func LoadCheckpoint(dir string) (*Checkpoint, error) {
	data, err := os.ReadFile(filepath.Join(dir, CheckpointName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var cp Checkpoint
	if err := json.Unmarshal(data, &cp); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, CheckpointName), err)
	}
	return &cp, nil
}

// RemoveCheckpoint deletes dir's checkpoint after the stage has finished.
func RemoveCheckpoint(dir string) error {
	err := os.Remove(filepath.Join(dir, CheckpointName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// PruneShards removes shard files in dir that start with prefix and are not
// in keep, along with stray temporary files: what an interrupted run wrote
// after its last checkpoint.
func PruneShards(dir, prefix string, keep []ShardInfo) error {
	if err := RemoveTemps(dir); err != nil {
		return err
	}
	listed := map[string]bool{}
	for _, s := range keep {
		listed[s.Name] = true
	}
	matches, err := filepath.Glob(filepath.Join(dir, prefix+"-*.arrow"))
	if err != nil {
		return err
	}
	for _, m := range matches {
		if !listed[filepath.Base(m)] {
			if err := os.Remove(m); err != nil {
				return fmt.Errorf("remove unfinished shard: %w", err)
			}
		}
	}
	return nil
}
