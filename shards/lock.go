package shards

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// OutputLockName is the lock file that a stage holds in its output
// directory while it writes there (LockOutput). It is removed when the
// stage ends; one left by a killed process is stale and taken over.
const OutputLockName = ".smelt-lock"

// LockedError is returned when another process holds a directory's lock.
type LockedError struct {
	// Dir is the locked directory, Path its lock file.
	Dir, Path string
	// Holder describes the process holding it, as it wrote it into the
	// lock file ("pid 1234: smelt ingest ..."); empty if it had not yet.
	Holder string
}

func (e *LockedError) Error() string {
	h := e.Holder
	if h == "" {
		h = "another process"
	}
	return fmt.Sprintf("%s is in use by %s (lock %s): wait for it to end, or write elsewhere", e.Dir, h, e.Path)
}

// held are the locks this process holds, by lock file path: flock locks
// belong to an open file, so a second open of the same file in this process
// would conflict with the first; a nested LockDir of a held directory (a
// stage that runs another stage into its own output) shares the lock.
var (
	heldMu sync.Mutex
	held   = map[string]*heldLock{}
)

type heldLock struct {
	f    *os.File
	refs int
}

// LockOutput takes the lock of the stage output directory dir (which must
// exist), so that two processes never write into one output at once. See
// LockDir.
func LockOutput(dir string) (unlock func(), err error) {
	return LockDir(dir, OutputLockName)
}

// LockDir takes an exclusive lock on the file name in dir, creating it, and
// records this process (pid and command line) in it. If another process
// holds it, LockDir fails at once with a *LockedError naming that process.
// The lock goes with the process, also when it is killed; unlock removes
// the file. Within one process the lock is shared: taking it again nests.
func LockDir(dir, name string) (unlock func(), err error) {
	abs, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	heldMu.Lock()
	defer heldMu.Unlock()
	if h := held[abs]; h != nil {
		h.refs++
		return releaser(abs, h), nil
	}
	for attempt := 0; ; attempt++ {
		f, err := os.OpenFile(abs, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", dir, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				// The holder writes who it is just after taking the lock.
				var holder []byte
				for i := 0; i < 20 && len(holder) == 0; i++ {
					if i > 0 {
						time.Sleep(5 * time.Millisecond)
					}
					holder, _ = os.ReadFile(abs)
				}
				return nil, &LockedError{Dir: dir, Path: abs, Holder: strings.TrimSpace(string(holder))}
			}
			return nil, fmt.Errorf("lock %s: %w", abs, err)
		}
		// The holder before us may have removed the file after we opened
		// it: then we hold a lock on a file nobody else will open. Lock
		// the file that is there now instead.
		if same, err := sameFile(f, abs); err != nil || !same {
			f.Close()
			if attempt < 100 {
				continue
			}
			return nil, fmt.Errorf("lock %s: the lock file keeps being replaced", abs)
		}
		host, _ := os.Hostname()
		info := fmt.Sprintf("pid %d on %s since %s: %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339), strings.Join(os.Args, " "))
		if err := f.Truncate(0); err == nil {
			_, _ = f.WriteAt([]byte(info), 0) // only informs an error message
		}
		h := &heldLock{f: f, refs: 1}
		held[abs] = h
		return releaser(abs, h), nil
	}
}

func sameFile(f *os.File, path string) (bool, error) {
	a, err := f.Stat()
	if err != nil {
		return false, err
	}
	b, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return os.SameFile(a, b), nil
}

// releaser drops one reference to a held lock; the last removes the lock
// file, while still holding the lock, and then releases it.
func releaser(abs string, h *heldLock) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			heldMu.Lock()
			defer heldMu.Unlock()
			if h.refs--; h.refs > 0 {
				return
			}
			delete(held, abs)
			os.Remove(abs)
			h.f.Close()
		})
	}
}
