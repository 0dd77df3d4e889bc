package dedup

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStoreLockedNamesPID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store")
	opt := DefaultOptions()
	s, err := OpenStore(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Badger's flock is per open file description, so a second open in
	// the same process is refused like one from another process.
	_, err = OpenStore(path, opt)
	want := fmt.Sprintf("store is locked by PID %d", os.Getpid())
	if !errors.Is(err, ErrStoreLocked) || !strings.Contains(err.Error(), want) {
		t.Fatalf("second open: %v; want %q", err, want)
	}
}

func TestStoreRefusesOtherSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store")
	s, err := OpenStore(path, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	opt := DefaultOptions()
	opt.NGram = 3
	if s, err := OpenStore(path, opt); err == nil {
		s.Close()
		t.Fatal("a store built with 5-grams opened for 3-grams")
	}
}

// storeDocs returns a deduper holding n distinct documents, all kept.
func storeDocs(t testing.TB, n int, prefix string) (*Deduper, *Result) {
	s := genCorpus(11, n, prefix, "web")
	return runDedup(t, s.docs, DefaultOptions(), nil)
}

// TestStoreHelperProcess is the child of TestStoreSurvivesKill9: it commits
// documents, says so, and waits to be killed.
func TestStoreHelperProcess(t *testing.T) {
	path := os.Getenv("SMELT_DEDUP_STORE_CHILD")
	if path == "" {
		t.Skip("helper process for TestStoreSurvivesKill9")
	}
	s, err := OpenStore(path, DefaultOptions())
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	d, res := storeDocs(t, 60, "k")
	if err := d.Commit(s, res); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	// More writes in flight when the kill comes: not synced, may be lost,
	// must not corrupt.
	d2, res2 := storeDocs(t, 60, "late")
	go d2.Commit(s, res2)
	fmt.Println("committed")
	time.Sleep(time.Minute)
}

// TestStoreSurvivesKill9 kills a process holding the store right after a
// commit and checks that the store opens again (the lock is released with
// the process), holds every committed document, and still deduplicates.
func TestStoreSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "store")
	cmd := exec.Command(os.Args[0], "-test.run=^TestStoreHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SMELT_DEDUP_STORE_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	ok := false
	for sc.Scan() {
		line := sc.Text()
		if line == "committed" {
			ok = true
			break
		}
		if strings.HasPrefix(line, "error:") {
			t.Fatal(line)
		}
	}
	// While the child holds it, the store names the child's PID.
	if _, err := OpenStore(path, DefaultOptions()); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("PID %d", cmd.Process.Pid)) {
		t.Errorf("open while the child holds the store: %v", err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if !ok {
		t.Fatal("child did not commit")
	}
	s, err := OpenStore(path, DefaultOptions())
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer s.Close()
	d, res := storeDocs(t, 60, "k")
	var kept int
	for _, id := range d.ids {
		if !res.Dropped(id) {
			kept++
		}
	}
	n, err := s.Len()
	if err != nil {
		t.Fatal(err)
	}
	if n < int64(kept) {
		t.Fatalf("store holds %d documents after kill -9, want at least the %d committed", n, kept)
	}
	// The same documents under new ids are all duplicates of stored ones.
	again := genCorpus(11, 60, "k", "web")
	for _, doc := range again.docs {
		doc.ID = "new-" + doc.ID
	}
	_, res2 := runDedup(t, again.docs, DefaultOptions(), s)
	if res2.Summary.Dropped != int64(len(again.docs)) {
		t.Errorf("after kill -9: %d of %d re-ingested documents found in the store", res2.Summary.Dropped, len(again.docs))
	}
}
