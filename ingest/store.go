package ingest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/store"
)

// The ingest side of package store: inputs may be local files or URLs
// (s3://, http(s)://), opened (openInput, openParquet), described and
// hashed through these functions only.

// openRemote opens a remote object (a URL). It streams with ranged
// requests, resumes a dropped connection where it stopped, and can Seek
// and ReadAt (ranged requests of their own).
//
// A retryable failure of its reads (store.IsRetryable) is also recorded in
// the run's failure sink (from ctx), because decoders above it (gzip) may
// report it as a damaged stream instead of passing the error on.
func openRemote(ctx context.Context, path string) (store.File, error) {
	f, err := store.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	sink, _ := ctx.Value(sinkKey{}).(*failureSink)
	if sink == nil {
		return f, nil
	}
	return &watchedFile{File: f, sink: sink}, nil
}

type sinkKey struct{}

// failureSink holds the first retryable failure of a run's remote reads.
type failureSink struct {
	mu  sync.Mutex
	err error
}

func (s *failureSink) record(err error) {
	if err != nil && retryable(err) {
		s.mu.Lock()
		if s.err == nil {
			s.err = err
		}
		s.mu.Unlock()
	}
}

func (s *failureSink) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// watchedFile records its retryable read failures in a sink.
type watchedFile struct {
	store.File
	sink *failureSink
}

func (f *watchedFile) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	f.sink.record(err)
	return n, err
}

func (f *watchedFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.sink.record(err)
	return n, err
}

// statInput returns an input's size and modification time (Unix ns).
func statInput(ctx context.Context, path string) (size, mtime int64, err error) {
	in, err := store.Stat(ctx, path)
	if err != nil {
		return 0, 0, err
	}
	if !in.ModTime.IsZero() {
		mtime = in.ModTime.UnixNano()
	}
	return in.Size, mtime, nil
}

// inputSHA256 hashes a local input for the manifest. A remote input is not
// hashed: that would download it a second time (a Common Crawl WARC file is
// about 1 GB); its identity in the fingerprint is its URL, size and
// modification time, and the store checks its ETag on every ranged read.
func inputSHA256(path string) (string, error) {
	if store.IsRemote(path) {
		return "", nil
	}
	sum, _, err := shards.FileSHA256(path)
	return sum, err
}

// expandRemote resolves an input argument that names a URL or a paths list.
func expandRemote(ctx context.Context, arg string) ([]string, bool, error) {
	if !store.Handles(arg) {
		return nil, false, nil
	}
	infos, err := store.Expand(ctx, arg)
	if err != nil {
		return nil, true, err
	}
	out := make([]string, len(infos))
	for i, in := range infos {
		out[i] = in.Path
	}
	return out, true, nil
}

// redactInput is an input's name as manifests record it: a URL without
// user info or query string (where presigned URLs carry signatures).
func redactInput(path string) string { return store.Redact(path) }

// baseName is the lower-cased last element of a path, or of a URL's path
// (without its query string).
func baseName(path string) string {
	if store.IsRemote(path) {
		if i := strings.IndexAny(path, "?#"); i >= 0 {
			path = path[:i]
		}
	}
	return strings.ToLower(filepath.Base(path))
}

// retryable reports whether err says a remote input changed or could not be
// transferred whole (store.IsRetryable): not a damaged input, so it is not
// counted; the run fails and running it again retries.
func retryable(err error) bool { return store.IsRetryable(err) }

// retryError is the run's error for such an input.
func retryError(path string, err error) error {
	// Name the store's own error rather than the decoders' wrapping of it.
	for e := err; e != nil; e = errors.Unwrap(e) {
		if retryable(e) && e != store.ErrChanged && e != store.ErrRetry {
			err = e
		}
	}
	return fmt.Errorf("ingest: %s could not be read whole, so the run stops without counting it as a damaged input (run the same command again to resume from the last checkpoint; if the object changed, its new version is a new input): %w",
		redactInput(path), err)
}
