package pipelines

import (
	"fmt"
	"path/filepath"

	"github.com/smelt-dev/smelt/shards"
)

// Helpers for smelt lineage and smelt takedown (issue 28), which rewrite a
// finished run's outputs in place and must then redo what the run did
// after its tasks: the merged step directories and the tokenize step's
// configuration.

// Remerge merges a merge step's task outputs into its directory again,
// whatever its merge marker says: after a takedown rewrote the task
// outputs, the merged directory's links and manifest are stale.
func (r *Run) Remerge(stepName string) error {
	s := r.Plan.Step(stepName)
	if s == nil || !s.Merge {
		return fmt.Errorf("run %s: no merge step %q", r.Dir, stepName)
	}
	dirs := make([]string, len(s.Tasks))
	for i, t := range s.Tasks {
		dirs[i] = filepath.Join(r.Dir, t.Out)
	}
	if err := mergeShardDirs(filepath.Join(r.Dir, s.Name), s.Fingerprint, dirs); err != nil {
		return fmt.Errorf("merge %s: %w", s.Name, err)
	}
	if s.Kind == KindTokenize {
		if _, err := writeMix(r, r.Dir); err != nil {
			return err
		}
	}
	return nil
}

// TokenizeConfig is the configuration the run's tokenize task rank runs
// shards.Tokenize with, less the encoder and progress: the same inputs,
// output, source, shard size and (for a global dedup) OnlySource.
func (r *Run) TokenizeConfig(rank int) (shards.TokenizeConfig, error) {
	s := r.Plan.Step("tokenize")
	if s == nil || rank < 0 || rank >= len(s.Tasks) {
		return shards.TokenizeConfig{}, fmt.Errorf("run %s: no tokenize task %d", r.Dir, rank)
	}
	t := s.Tasks[rank]
	only := ""
	if dd := r.Plan.Step("dedup"); dd != nil && len(dd.Tasks) == 1 && dd.Tasks[0].Source == "" &&
		contains(t.Inputs, dd.Tasks[0].Out) {
		only = t.Source
	}
	ins := make([]string, len(t.Inputs))
	for i, in := range t.Inputs {
		ins[i] = filepath.Join(r.Dir, in)
	}
	return shards.TokenizeConfig{Inputs: ins, Out: filepath.Join(r.Dir, t.Out), Source: t.Source, OnlySource: only,
		TargetBytes: r.Recipe.ShardMB << 20, Compression: r.Recipe.TokenCompression}, nil
}
