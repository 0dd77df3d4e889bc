package pipelines

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/smelt-dev/smelt/shards"
)

// lock takes the run directory's lock, so that two smelt run processes
// (local executor, or Slurm submission) never work in one run directory at
// once. The lock goes with the process, also when it is killed. It is the
// lock every stage takes on its output directory (shards.LockDir).
func (r *Run) lock() (unlock func(), err error) {
	unlock, err = shards.LockDir(filepath.Join(r.Dir, StateDir), "lock")
	var le *shards.LockedError
	if errors.As(err, &le) {
		holder := le.Holder
		if holder == "" {
			holder = "another process"
		}
		return nil, fmt.Errorf("another smelt run is working in %s (%s; lock %s): wait for it to end", r.Dir, holder, le.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("run lock: %w", err)
	}
	return unlock, nil
}
