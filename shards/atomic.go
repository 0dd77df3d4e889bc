package shards

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
)

// AtomicFile is a file written under a temporary name and renamed into place
// on Commit, after an fsync, so a reader never sees a partial file and a crash
// leaves at most a stray temporary file behind. It hashes what is written.
type AtomicFile struct {
	path string
	tmp  string
	f    *os.File
	h    hash.Hash
	n    int64
	done bool
}

// CreateAtomic starts writing path. Call Commit to publish it, or Abort.
func CreateAtomic(path string) (*AtomicFile, error) {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return &AtomicFile{path: path, tmp: f.Name(), f: f, h: sha256.New()}, nil
}

// Write implements io.Writer.
func (a *AtomicFile) Write(p []byte) (int, error) {
	n, err := a.f.Write(p)
	a.h.Write(p[:n])
	a.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("write %s: %w", a.path, err)
	}
	return n, nil
}

// Seek supports only asking for the current position, which is all that
// streaming writers such as Arrow's IPC file writer need.
func (a *AtomicFile) Seek(offset int64, whence int) (int64, error) {
	if offset == 0 && whence == io.SeekCurrent {
		return a.n, nil
	}
	return 0, errors.New("shards: AtomicFile only reports its position")
}

// Size is the number of bytes written so far.
func (a *AtomicFile) Size() int64 { return a.n }

// SHA256 is the hex digest of everything written so far.
func (a *AtomicFile) SHA256() string { return hex.EncodeToString(a.h.Sum(nil)) }

// Commit fsyncs the file, renames it into place and fsyncs the directory.
func (a *AtomicFile) Commit() error {
	if a.done {
		return errors.New("shards: AtomicFile already finished")
	}
	a.done = true
	// CreateTemp makes the file private (0600); published files are
	// ordinary data files.
	if err := a.f.Chmod(0o644); err != nil {
		a.f.Close()
		os.Remove(a.tmp)
		return fmt.Errorf("chmod %s: %w", a.path, err)
	}
	if err := a.f.Sync(); err != nil {
		a.f.Close()
		os.Remove(a.tmp)
		return fmt.Errorf("sync %s: %w", a.path, err)
	}
	if err := a.f.Close(); err != nil {
		os.Remove(a.tmp)
		return fmt.Errorf("close %s: %w", a.path, err)
	}
	if err := os.Rename(a.tmp, a.path); err != nil {
		os.Remove(a.tmp)
		return fmt.Errorf("publish %s: %w", a.path, err)
	}
	return syncDir(filepath.Dir(a.path))
}

// Abort discards the temporary file. It is safe after Commit (a no-op).
func (a *AtomicFile) Abort() {
	if a.done {
		return
	}
	a.done = true
	a.f.Close()
	os.Remove(a.tmp)
}

// WriteFileAtomic writes data to path atomically (temp file, fsync, rename).
func WriteFileAtomic(path string, data []byte) error {
	a, err := CreateAtomic(path)
	if err != nil {
		return err
	}
	if _, err := a.Write(data); err != nil {
		a.Abort()
		return err
	}
	return a.Commit()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// RemoveTemps deletes temporary files that an interrupted writer left in dir.
func RemoveTemps(dir string) error {
	matches, err := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	if err != nil {
		return err
	}
	for _, m := range matches {
		if err := os.Remove(m); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove stale temp file: %w", err)
		}
	}
	return nil
}

// FileSHA256 hashes a file's contents.
func FileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// LinkAtomic publishes the existing file src at path as a hard link: the
// same bytes with no copy, for an output file that is known to equal an
// earlier one. The link is made under a temporary name in path's
// directory and renamed into place, then the directory is synced, so a
// reader never sees a partial file. It fails where the filesystem cannot
// link (another device, no hard links); the caller then writes the file.
// src must never be changed in place afterwards (smelt's outputs are
// only ever replaced whole).
func LinkAtomic(src, path string) error {
	a, err := os.Lstat(src)
	if err != nil {
		return fmt.Errorf("link %s: %w", path, err)
	}
	if !a.Mode().IsRegular() {
		// link(2) would link a symbolic link itself, not its target.
		return fmt.Errorf("link %s: %s is not a regular file", path, src)
	}
	if b, err := os.Stat(path); err == nil && os.SameFile(a, b) {
		return nil // already that file (renaming a link onto itself does nothing)
	}
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("link %s: %w", path, err)
	}
	tmp := f.Name()
	f.Close()
	// os.Link does not replace: the temporary name is taken back first.
	if err := os.Remove(tmp); err != nil {
		return fmt.Errorf("link %s: %w", path, err)
	}
	if err := os.Link(src, tmp); err != nil {
		return fmt.Errorf("link %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("publish %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}
