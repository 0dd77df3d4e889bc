// Package testutil holds the few helpers that several stages' tests share:
// finding the real sample data, reading document shards back, and checking
// that two output trees are byte-identical.
package testutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/smelt-dev/smelt/internal/nodepkg"
	"github.com/smelt-dev/smelt/shards"
)

// SharedData returns the path of rel inside the project's shared sample
// data (../shared/data beside the repository), skipping the test with a
// message when it is absent, as it is in a user's clone.
func SharedData(t testing.TB, rel string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "data")
	p := filepath.Join(root, rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s not available (../shared/data is only on developer machines and CI): %v", rel, err)
	}
	return p
}

// TrafilaturaPages returns the first n (in name order) of the real web pages
// shipped in the go-trafilatura module, which every build of smelt
// downloads, skipping the test when the module cache does not have them.
func TrafilaturaPages(t testing.TB, n int) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/markusmobius/go-trafilatura").Output()
	if err != nil {
		t.Skipf("cannot locate the go-trafilatura module: %v", err)
	}
	pages, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "test-files", "comparison", "*.html"))
	if len(pages) < n {
		t.Skipf("go-trafilatura's test pages not in the module cache (%d found)", len(pages))
	}
	sort.Strings(pages)
	return pages[:n]
}

// ReadDocs reads every document of finished shard directories, in order.
func ReadDocs(t testing.TB, dirs ...string) []*shards.Document {
	t.Helper()
	r, err := shards.OpenDocDirs(dirs...)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var docs []*shards.Document
	for {
		d, err := r.Next()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
	}
}

// TreeFiles returns the contents of every file under dir, by path
// relative to dir.
func TreeFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		m[rel] = data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// SameTree fails the test unless the two directory trees hold the same
// files with the same bytes; for text files it shows the first differing
// line.
func SameTree(t testing.TB, want, got string) {
	t.Helper()
	a, b := TreeFiles(t, want), TreeFiles(t, got)
	if names(a) != names(b) {
		t.Fatalf("different files:\n want %s\n  got %s", names(a), names(b))
	}
	for k := range a {
		if !bytes.Equal(a[k], b[k]) {
			t.Errorf("%s differs%s", k, firstDiff(a[k], b[k]))
		}
	}
}

func names(m map[string][]byte) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return fmt.Sprint(keys)
}

// firstDiff describes where two text files first differ.
func firstDiff(a, b []byte) string {
	if !utf8.Valid(a) || !utf8.Valid(b) {
		return ""
	}
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < len(la) && i < len(lb); i++ {
		if la[i] != lb[i] {
			return fmt.Sprintf(" at line %d:\n want %s\n  got %s", i+1, la[i], lb[i])
		}
	}
	return fmt.Sprintf(": %d lines vs %d", len(la), len(lb))
}

// SyncBuffer is a bytes.Buffer safe to read while another goroutine (a
// command, a logger) writes to it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// NodePackages returns the path of node, after installing the npm
// packages of dir (its package.json and package-lock.json) with npm ci
// into its git-ignored node_modules when one of want (package names) is
// missing there. It skips the test, naming what, when node or npm is
// absent or the install fails (offline).
func NodePackages(t testing.TB, dir, what string, want ...string) string {
	t.Helper()
	files := make([]string, len(want))
	for i, p := range want {
		files[i] = filepath.Join(p, "package.json")
	}
	node, skip := nodepkg.Install(dir, what, files...)
	if node == "" {
		t.Skip(skip)
	}
	return node
}

// Thorough skips the calling test unless SMELT_THOROUGH is set. Long
// thoroughness runs (scale runs, large kill matrices, long fuzzing, many
// repetitions) go behind it so that the README's test command stays fast and
// reliable on two busy cores; .ci/run sets SMELT_THOROUGH=1 and runs them.
// Such a test must still be correct without wall-clock assumptions.
func Thorough(t testing.TB) {
	t.Helper()
	if os.Getenv("SMELT_THOROUGH") == "" {
		t.Skip("thoroughness run: set SMELT_THOROUGH=1 to run it (.ci/run does)")
	}
}

// IsThorough reports whether SMELT_THOROUGH is set: a test that runs a
// representative subset by default and its whole matrix under .ci/run asks
// this rather than skipping outright.
func IsThorough() bool { return os.Getenv("SMELT_THOROUGH") != "" }

// Context is the context for a child process or a wait in a test: it ends
// when the test ends, or a little before go test's own -timeout would kill
// the binary (so that the test can still say what it was waiting for), and
// never sooner: a fixed limit of seconds or minutes would make the test
// depend on how loaded the machine is.
func Context(t testing.TB) context.Context {
	t.Helper()
	ctx := t.Context()
	type deadliner interface{ Deadline() (time.Time, bool) }
	if d, ok := t.(deadliner); ok {
		if dl, ok := d.Deadline(); ok {
			// Leave a twentieth of what is left (at most a minute) to
			// report the failure.
			margin := min(time.Until(dl)/20, time.Minute)
			c, cancel := context.WithDeadline(ctx, dl.Add(-margin))
			t.Cleanup(cancel)
			return c
		}
	}
	return ctx
}
