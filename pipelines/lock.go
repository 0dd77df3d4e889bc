package pipelines

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lock takes the run directory's lock, so that two smelt run processes
// (local executor, or Slurm submission) never work in one run directory at
// once. The lock goes with the process, also when it is killed.
func (r *Run) lock() (unlock func(), err error) {
	path := filepath.Join(r.Dir, StateDir, "lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("run lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another smelt run is working in %s (lock %s held): wait for it to end", r.Dir, path)
	}
	return func() { f.Close() }, nil
}
