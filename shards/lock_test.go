package shards

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLockChild is the other process of TestLockOutputTwoProcesses: it
// takes the lock of $SMELT_LOCK_CHILD, says so, and holds it until its
// standard input closes.
func TestLockChild(t *testing.T) {
	dir := os.Getenv("SMELT_LOCK_CHILD")
	if dir == "" {
		t.Skip("helper process for TestLockOutputTwoProcesses")
	}
	unlock, err := LockOutput(dir)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("locked")
	bufio.NewReader(os.Stdin).ReadString('\n')
	unlock()
}

func lockChild(t *testing.T, dir string) (*exec.Cmd, func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockChild$")
	cmd.Env = append(os.Environ(), "SMELT_LOCK_CHILD="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child: %q", line)
	}
	return cmd, func() { stdin.Close(); cmd.Wait() }
}

// TestLockOutputTwoProcesses: while one process holds an output
// directory's lock, another gets a LockedError naming its pid; when the
// holder ends, or is killed, the lock can be taken.
func TestLockOutputTwoProcesses(t *testing.T) {
	dir := t.TempDir()
	child, release := lockChild(t, dir)
	_, err := LockOutput(dir)
	var le *LockedError
	if !errors.As(err, &le) || !strings.Contains(le.Holder, fmt.Sprintf("pid %d ", child.Process.Pid)) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second writer: %v", err)
	}
	release()
	if _, err := os.Stat(filepath.Join(dir, OutputLockName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the lock file is left after its holder ended: %v", err)
	}
	unlock, err := LockOutput(dir)
	if err != nil {
		t.Fatalf("after the holder ended: %v", err)
	}
	unlock()

	// A holder killed with SIGKILL leaves its file; the lock is free.
	child, _ = lockChild(t, dir)
	child.Process.Kill()
	child.Wait()
	if _, err := os.Stat(filepath.Join(dir, OutputLockName)); err != nil {
		t.Fatalf("a killed holder left no lock file (nothing tested): %v", err)
	}
	unlock, err = LockOutput(dir)
	if err != nil {
		t.Fatalf("after the holder was killed: %v", err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, OutputLockName))
	if !strings.HasPrefix(string(data), fmt.Sprintf("pid %d ", os.Getpid())) {
		t.Errorf("the lock file names %q, not this process", data)
	}
	unlock()
}

// TestLockOutputNests: a stage running another stage into its own output
// shares the lock; it is released when the outer one unlocks.
func TestLockOutputNests(t *testing.T) {
	dir := t.TempDir()
	outer, err := LockOutput(dir)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := LockOutput(dir)
	if err != nil {
		t.Fatalf("nested lock: %v", err)
	}
	inner()
	inner() // a second call is a no-op
	if _, err := os.Stat(filepath.Join(dir, OutputLockName)); err != nil {
		t.Errorf("the inner unlock released the outer lock: %v", err)
	}
	outer()
	if _, err := os.Stat(filepath.Join(dir, OutputLockName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file left after the last unlock: %v", err)
	}
}
