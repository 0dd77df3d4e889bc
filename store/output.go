package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/smelt-dev/smelt/shards"
)

// Output is a stage's (or a run's) output directory. For a local path it is
// that directory. For a URL, the stage writes a local staging directory as
// usual (atomic files, checkpoints, resume after kill -9 all unchanged), and
// Publish uploads it: every data object first, then the manifests and
// completion markers, the top-level manifest last, so that a reader of the
// store never sees a manifest whose shards are not all there.
type Output struct {
	// URL is the output as the user named it.
	URL string
	// Dir is where the stage writes: URL itself when it is local.
	Dir string
}

// Remote reports whether the output lives in a store.
func (o *Output) Remote() bool { return IsRemote(o.URL) }

// StagingRoot is where remote outputs are staged: $SMELT_STAGING, else the
// user's cache directory (~/.cache/smelt/staging).
func StagingRoot() (string, error) {
	if d := os.Getenv("SMELT_STAGING"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no staging directory for remote outputs (set SMELT_STAGING): %w", err)
	}
	return filepath.Join(d, "smelt", "staging"), nil
}

// stagingNames are the small files copied down from a finished remote
// output, so that a rerun on another machine finds it finished (or refuses
// to overwrite the output of a different job) without downloading shards.
var stagingNames = []string{"manifest.json", "stats.json"}

// PrepareOutput resolves an output. For a URL it makes (or reuses, to
// resume) the staging directory named after the URL and, when the store
// already holds a finished output there and the staging directory does
// not, copies its manifest and stats down.
func PrepareOutput(ctx context.Context, out string) (*Output, error) {
	if !IsRemote(out) {
		return &Output{URL: out, Dir: out}, nil
	}
	if _, err := backendFor(ctx, out); err != nil {
		return nil, err
	}
	if Scheme(out) == "http" || Scheme(out) == "https" {
		return nil, fmt.Errorf("%s: http(s) URLs are read-only; write outputs to a directory or an s3:// URL", Redact(out))
	}
	root, err := StagingRoot()
	if err != nil {
		return nil, err
	}
	clean := strings.TrimRight(Redact(out), "/")
	sum := sha256.Sum256([]byte(clean))
	dir := filepath.Join(root, hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("staging for %s: %w", clean, err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".remote"), []byte(clean+"\n"), 0o644); err != nil {
		return nil, err
	}
	o := &Output{URL: clean, Dir: dir}
	if _, err := os.Stat(filepath.Join(dir, "manifest.json")); errors.Is(err, fs.ErrNotExist) {
		for _, name := range stagingNames {
			data, err := ReadFile(ctx, Join(clean, name))
			if errors.Is(err, ErrNotFound) {
				if name == "manifest.json" {
					break // nothing finished there
				}
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("output %s: %w", clean, err)
			}
			if err := shards.WriteFileAtomic(filepath.Join(dir, name), data); err != nil {
				return nil, err
			}
		}
	}
	slog.Debug("staging remote output", "url", clean, "dir", dir)
	return o, nil
}

// Err rewrites mentions of the staging directory in err to the URL, so
// messages name what the user gave.
func (o *Output) Err(err error) error {
	if err == nil || !o.Remote() || !strings.Contains(err.Error(), o.Dir) {
		return err
	}
	return &rewritten{msg: strings.ReplaceAll(err.Error(), o.Dir, o.URL), err: err}
}

type rewritten struct {
	msg string
	err error
}

func (r *rewritten) Error() string { return r.msg }
func (r *rewritten) Unwrap() error { return r.err }

// rank orders uploads: data, then nested manifests, then markers, then the
// top-level files, the top-level manifest last of all.
func rank(rel string) int {
	base := filepath.Base(rel)
	top := !strings.Contains(rel, "/")
	switch {
	case top && base == "manifest.json":
		return 4
	case top:
		return 3
	case strings.HasSuffix(base, ".done"):
		return 2
	case base == "manifest.json":
		return 1
	}
	return 0
}

// skipName reports files that stay local: temporary and hidden files,
// checkpoints (resume state of the staging directory), locks.
func skipName(name string) bool {
	if name == ".smelt" { // a run directory's plan, markers and logs
		return false
	}
	return strings.HasPrefix(name, ".") || name == "lock" || name == "_checkpoint.json" || strings.HasSuffix(name, ".lock") ||
		strings.HasSuffix(name, ".running") || strings.HasSuffix(name, ".failed")
}

// Publish uploads the staging directory to the store (nothing to do for a
// local output). It may be run again after a failure or a kill: a data
// object already in the store with the same size, uploaded after the local
// file was written, is not sent again.
func (o *Output) Publish(ctx context.Context) error {
	if !o.Remote() {
		return nil
	}
	type file struct {
		rel  string
		info fs.FileInfo
	}
	var files []file
	err := filepath.WalkDir(o.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != o.Dir && skipName(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(o.Dir, p)
		files = append(files, file{filepath.ToSlash(rel), info})
		return nil
	})
	if err != nil {
		return fmt.Errorf("publish %s: %w", o.URL, err)
	}
	sort.SliceStable(files, func(i, j int) bool {
		ri, rj := rank(files[i].rel), rank(files[j].rel)
		if ri != rj {
			return ri < rj
		}
		if ri == 1 || ri == 2 { // deeper manifests first
			di, dj := strings.Count(files[i].rel, "/"), strings.Count(files[j].rel, "/")
			if di != dj {
				return di > dj
			}
		}
		return files[i].rel < files[j].rel
	})
	var have map[string]Info
	if all, err := List(ctx, o.URL+"/"); err == nil {
		have = make(map[string]Info, len(all))
		for _, in := range all {
			have[strings.TrimPrefix(in.Path, o.URL+"/")] = in
		}
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("publish %s: %w", o.URL, err)
	}
	sent, kept := 0, 0
	for _, f := range files {
		if r, ok := have[f.rel]; ok && rank(f.rel) == 0 && r.Size == f.info.Size() && r.ModTime.After(f.info.ModTime()) {
			kept++
			continue
		}
		if err := o.upload(ctx, f.rel, f.info.Size()); err != nil {
			return err
		}
		sent++
	}
	slog.Info("published", "url", o.URL, "objects", sent, "already_there", kept)
	return nil
}

func (o *Output) upload(ctx context.Context, rel string, size int64) error {
	src, err := os.Open(filepath.Join(o.Dir, filepath.FromSlash(rel)))
	if err != nil {
		return fmt.Errorf("publish %s: %w", o.URL, err)
	}
	defer src.Close()
	u := Join(o.URL, rel)
	return retry(ctx, u, "upload", func() error {
		if _, err := src.Seek(0, io.SeekStart); err != nil {
			return err
		}
		return Put(ctx, u, src, size)
	})
}

// List returns the objects under a remote prefix (sorted), or the files
// under a local directory.
func List(ctx context.Context, prefix string) ([]Info, error) {
	if !IsRemote(prefix) {
		return nil, fmt.Errorf("%s: not a URL", prefix)
	}
	b, err := backendFor(ctx, prefix)
	if err != nil {
		return nil, err
	}
	return b.list(ctx, prefix)
}

// OnlyJSON selects the manifests, stats and other JSON files of an output
// (all that smelt stats reads), not its shards.
func OnlyJSON(rel string) bool { return strings.HasSuffix(rel, ".json") }

// Fetch makes a remote output directory readable locally for stats, report
// and downstream stages: it downloads the prefix's objects (all, or those
// whose relative name want accepts) into a cache directory named after the
// URL and returns it; a local path is returned as it is. Objects already
// fetched with the right size are not downloaded again.
func Fetch(ctx context.Context, dir string, want func(rel string) bool) (string, error) {
	if !IsRemote(dir) {
		return dir, nil
	}
	clean := strings.TrimRight(Redact(dir), "/")
	all, err := List(ctx, clean+"/")
	if err != nil {
		return "", err
	}
	if len(all) == 0 {
		return "", fmt.Errorf("%s: %w: no objects under this prefix", clean, ErrNotFound)
	}
	root, err := StagingRoot()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte("fetch:" + clean))
	local := filepath.Join(root, "fetched-"+hex.EncodeToString(sum[:8]))
	for _, in := range all {
		rel := strings.TrimPrefix(in.Path, clean+"/")
		if rel == "" || strings.Contains(rel, "..") || want != nil && !want(rel) {
			continue
		}
		dst := filepath.Join(local, filepath.FromSlash(rel))
		if fi, err := os.Stat(dst); err == nil && fi.Size() == in.Size {
			continue
		}
		if err := download(ctx, in.Path, dst); err != nil {
			return "", err
		}
	}
	return local, nil
}

func download(ctx context.Context, u, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	src, err := Open(ctx, u)
	if err != nil {
		return err
	}
	defer src.Close()
	f, err := shards.CreateAtomic(dst)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := io.Copy(f, src); err != nil {
		return fmt.Errorf("download %s: %w", Redact(u), err)
	}
	return f.Commit()
}
