package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/smelt-dev/smelt/store"
)

// smelt ingest --allow-redirects reaches the store through the run's
// context (store.WithPolicy), not a package variable: without it a
// redirect to another host is refused as such; with it the redirect is
// followed as far as the address check, which still refuses the loopback
// host the user did not name. Two runs in one process keep their own
// setting (the variable the flag once set raced with other in-process
// runs reading it).
func TestIngestRedirectPolicyFlag(t *testing.T) {
	t.Parallel()
	var bHits atomic.Int64
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bHits.Add(1)
		w.Write([]byte("hello\n"))
	}))
	defer b.Close()
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, b.URL+"/page.txt", http.StatusFound)
	}))
	defer a.Close()
	root := t.TempDir()
	ingestURL := func(out string, flags ...string) error {
		_, err := runSmelt(t, append([]string{"ingest", a.URL + "/page.txt", "--out", filepath.Join(root, out)}, flags...)...)
		return err
	}
	if err := ingestURL("default"); !errors.Is(err, store.ErrRedirect) || !strings.Contains(err.Error(), "another host") {
		t.Fatalf("without --allow-redirects: got %v, want the cross-host redirect refused", err)
	}
	if err := ingestURL("allowed", "--allow-redirects"); !errors.Is(err, store.ErrForbiddenAddress) {
		t.Fatalf("with --allow-redirects: got %v, want the redirect followed to the address check", err)
	}
	// The run after it is back to the default: the flag did not stay set.
	if err := ingestURL("again"); !errors.Is(err, store.ErrRedirect) {
		t.Fatalf("a later run without the flag: got %v, want the redirect refused", err)
	}
	if n := bHits.Load(); n != 0 {
		t.Fatalf("the host nobody named got %d requests", n)
	}
}

// Verbs run in one process at once (as the parallel tests here do, and a
// library user may) share no package variable that a verb writes: a
// regression test for the race -race found in CI, where smelt ingest
// wrote store.IdleTimeout while another run's newRootCmd read it as the
// flag's default. Under -race (CI) any such write, by any verb that runs
// here, is reported; without -race the test only checks the runs fail as
// they should.
func TestConcurrentInProcessRuns(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	missing := filepath.Join(root, "missing")
	verbs := [][]string{
		{"ingest", missing, "--idle-timeout", "1s", "--allow-redirects", "--out"},
		{"tokenize", missing, "--out"},
		{"filter", missing, "--out"},
		{"dedup", missing, "--out"},
		{"export", missing, "--format", "jsonl", "--out"},
		{"train", "--data", missing, "--steps", "1", "--out"},
	}
	var wg sync.WaitGroup
	for g, verb := range verbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				out := filepath.Join(root, fmt.Sprintf("out-%d-%d", g, i))
				if _, err := runSmelt(t, append(verb, out)...); err == nil {
					t.Errorf("smelt %s on a missing input succeeded", verb[0])
					return
				}
			}
		}()
	}
	wg.Wait()
}
