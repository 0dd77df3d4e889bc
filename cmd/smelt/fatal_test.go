package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/smelt-dev/smelt/internal/testutil"
)

// smallDisk mounts a tmpfs of size bytes (root only; the test skips
// otherwise), so that writing more fails with "no space left on device".
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	return dir
}

// TestNoDoneBeforeDiskFull runs smelt ingest, filter and tokenize as real
// processes into a full disk: each exits non-zero with "no space left on
// device", and none logs "done" first.
func TestNoDoneBeforeDiskFull(t *testing.T) {
	warc := testutil.SharedData(t, "warc/dolma_sample-0000.warc.gz")
	docs := filepath.Join(t.TempDir(), "docs")
	if out, err := runSmelt(t, "ingest", warc, "--out", docs, "--workers", "1"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	full := smallDisk(t, "16k")
	for _, args := range [][]string{
		{"ingest", warc, "--out", filepath.Join(full, "ingest"), "--workers", "1"},
		{"filter", docs, "--out", filepath.Join(full, "filter"), "--workers", "1"},
		{"tokenize", docs, "--out", filepath.Join(full, "tokenize"), "--tokenizer", "gpt2", "--workers", "1"},
	} {
		cmd := smeltProcess(t, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		log := stderr.String()
		if err == nil || !strings.Contains(log, "no space left on device") {
			t.Errorf("smelt %s into a full disk: %v\n%s", args[0], err, log)
			continue
		}
		if strings.Contains(log, "msg=done") {
			t.Errorf("smelt %s logged done before failing:\n%s", args[0], log)
		}
		os.RemoveAll(filepath.Join(full, args[0]))
	}
}
