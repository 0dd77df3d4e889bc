// Package nodepkg installs the npm packages that interop tests run under
// Node.js (Arrow JS, Polars, DuckDB, the reference fastText): once, with
// `npm ci` from a committed package-lock.json into a git-ignored
// node_modules. It imports nothing of smelt's, so any package's internal
// tests can use it.
package nodepkg

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Install returns the path of node after making sure that every path in
// want exists under dir/node_modules, running `npm ci` in dir when one is
// missing. When node or npm is missing or the install fails, node is ""
// and skip says why, for the test to skip with: what names the check.
func Install(dir, what string, want ...string) (node, skip string) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", fmt.Sprintf("node not found: skipping %s (install Node.js and npm to run it)", what)
	}
	// One install at a time, across goroutines and test binaries (go test
	// runs two packages at once, and cmd/smelt shares tokenize's
	// directory): without it a test that found the packages while another
	// test's npm ci was still writing (or replacing) them ran node on a
	// half-written native library and died of SIGBUS (seen under load on a
	// fresh clone). flock locks per open file, so each call opens its own.
	lockFile, err := os.OpenFile(filepath.Join(dir, ".npm-install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Sprintf("cannot lock %s (%v): skipping %s", dir, err, what)
	}
	defer lockFile.Close() // releases the lock
	if err := syscall.Flock(int(lockFile.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Sprintf("cannot lock %s (%v): skipping %s", dir, err, what)
	}
	// The marker is written after npm ci succeeds: packages without it may
	// be half extracted.
	marker := filepath.Join(dir, "node_modules", ".smelt-installed")
	installed := func() bool {
		if _, err := os.Stat(marker); err != nil {
			return false
		}
		for _, p := range want {
			if _, err := os.Stat(filepath.Join(dir, "node_modules", p)); err != nil {
				return false
			}
		}
		return true
	}
	if installed() {
		return node, ""
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", fmt.Sprintf("npm not found: skipping %s (install npm to run it)", what)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil {
		err = os.WriteFile(marker, nil, 0o644)
	}
	if err != nil || !installed() {
		return "", fmt.Sprintf("npm ci in %s failed (offline?), skipping %s: %v\n%s", dir, what, err, out)
	}
	return node, ""
}
