package shards

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLinkAtomic publishes a file as a hard link: the same inode at the
// new path (replacing a file there), nothing left under a temporary
// name, a link onto itself a no-op, and a symbolic link refused.
func TestLinkAtomic(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := WriteFileAtomic(src, []byte("earlier export file")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(out, "part-00000")
	if err := os.WriteFile(dst, []byte("an interrupted run's file"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // the second time onto itself
		if err := LinkAtomic(src, dst); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := os.Stat(src)
	b, err := os.Stat(dst)
	if err != nil || !os.SameFile(a, b) {
		t.Fatalf("%s is not a link to %s (%v)", dst, src, err)
	}
	if got, _ := os.ReadFile(dst); string(got) != "earlier export file" {
		t.Fatalf("read %q", got)
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 1 {
		t.Fatalf("%d entries in %s, want only the published file", len(entries), out)
	}
	sym := filepath.Join(dir, "sym")
	if err := os.Symlink(src, sym); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	if err := LinkAtomic(sym, filepath.Join(out, "part-00001")); err == nil {
		t.Fatal("linked a symbolic link")
	}
	if entries, _ := os.ReadDir(out); len(entries) != 1 {
		t.Fatalf("%d entries in %s after a refused link", len(entries), out)
	}
}
