// Package store reads and writes inputs and outputs where they live: local
// files, objects in S3 and S3-compatible stores (and, in builds with the
// gcs or azure tag, Google Cloud Storage and Azure Blob Storage) through
// gocloud.dev/blob, and http(s):// URLs through net/http.
//
// Reads stream: an object is never downloaded whole. A transient failure
// (a dropped connection, a 5xx or 429 answer) is retried with exponential
// backoff, and a body cut short resumes with a ranged request from the
// byte already delivered, so a reader sees exactly the bytes of the object.
// Credentials come from each store's standard environment and configuration
// chain (for S3: AWS_* variables, ~/.aws/config and credentials, SSO,
// instance roles); they are never logged, and a URL reaches no output
// (log, error, id, manifest, plan) without going through Redact, which
// removes the credentials of presigned URLs. Redirects keep to the named
// host (checkRedirect), connections to loopback, link-local and private
// addresses need the user to have named that host (guardedDial), and every
// body read has an idle timeout. Both settings (Policy) travel in the
// context of the calls (WithPolicy), never in package variables.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Info describes one input: a local file or a remote object.
type Info struct {
	// Path is the local path or the URL as given (s3://bucket/key, ...).
	Path string
	// Size in bytes; -1 when a server did not say.
	Size int64
	// ModTime is the modification time (zero when unknown).
	ModTime time.Time
	// ETag identifies the object's version where the store gives one.
	ETag string
}

// File is an open input: read sequentially, seek, or read at offsets
// (Parquet). *os.File-backed local files and remote objects both satisfy it.
type File interface {
	io.Reader
	io.ReaderAt
	io.Seeker
	io.Closer
	// Size is the length of the input in bytes.
	Size() int64
}

var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)

// IsRemote reports whether p is a URL (scheme://...) rather than a local
// path. Unknown schemes are remote too, so that opening them fails with a
// clear error instead of a "no such file".
func IsRemote(p string) bool { return schemeRE.MatchString(p) }

// Scheme returns p's URL scheme in lower case, or "" for a local path.
func Scheme(p string) string {
	if !IsRemote(p) {
		return ""
	}
	return strings.ToLower(p[:strings.Index(p, "://")])
}

// ErrUnknownScheme is returned (wrapped) for a URL no backend handles.
var ErrUnknownScheme = errors.New("unknown URL scheme")

// ErrNotFound is returned (wrapped) for a missing object, prefix or bucket.
var ErrNotFound = errors.New("not found")

// ErrDenied is returned (wrapped) when the store refuses the credentials or
// the access.
var ErrDenied = errors.New("access denied")

// schemes lists the schemes this build can open, for error messages.
func schemes() string {
	return "s3, http and https URLs and local paths"
}

// backend is one kind of store.
type backend interface {
	stat(ctx context.Context, u string) (Info, error)
	// open returns the object's bytes from off to the end.
	open(ctx context.Context, u string, off int64, want Info) (io.ReadCloser, error)
	// list returns the objects whose URL starts with prefix, sorted.
	list(ctx context.Context, prefix string) ([]Info, error)
	// put uploads size bytes from r as one object, visible when complete.
	put(ctx context.Context, u string, r io.Reader, size int64) error
	remove(ctx context.Context, u string) error
}

func backendFor(ctx context.Context, p string) (backend, error) {
	switch s := Scheme(p); s {
	case "":
		return nil, fmt.Errorf("%s: not a URL", p)
	case "http", "https":
		return httpBackend{}, nil
	default:
		b, err := blobBackendFor(ctx, s, p)
		if err != nil {
			return nil, err
		}
		return b, nil
	}
}

// Stat describes a local file or a remote object.
func Stat(ctx context.Context, p string) (Info, error) {
	if !IsRemote(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return Info{}, err
		}
		if fi.IsDir() {
			return Info{}, fmt.Errorf("%s is a directory", p)
		}
		return Info{Path: p, Size: fi.Size(), ModTime: fi.ModTime()}, nil
	}
	if in, ok := cachedInfo(p); ok {
		return in, nil
	}
	b, err := backendFor(ctx, p)
	if err != nil {
		return Info{}, err
	}
	var in Info
	err = retry(ctx, p, "stat", func() error {
		var err error
		in, err = b.stat(ctx, p)
		return err
	})
	if err != nil {
		return Info{}, err
	}
	in.Path = p
	return in, nil
}

// Open opens a local file or a remote object for reading. A remote object
// is read by ranged requests; nothing is downloaded before it is read.
func Open(ctx context.Context, p string) (File, error) {
	if !IsRemote(p) {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		return &localFile{File: f, size: fi.Size()}, nil
	}
	in, err := Stat(ctx, p)
	if err != nil {
		return nil, err
	}
	b, err := backendFor(ctx, p)
	if err != nil {
		return nil, err
	}
	return &Object{ctx: ctx, b: b, url: p, info: in}, nil
}

type localFile struct {
	*os.File
	size int64
}

func (f *localFile) Size() int64 { return f.size }

// Put uploads size bytes from r as the object u. The object appears only
// when the upload completes (an upload cut short leaves nothing), so a
// reader never sees a half-written object.
func Put(ctx context.Context, u string, r io.Reader, size int64) error {
	b, err := backendFor(ctx, u)
	if err != nil {
		return err
	}
	infoCache.Delete(u)
	return b.put(ctx, u, r, size)
}

// Remove deletes a local file or a remote object.
func Remove(ctx context.Context, p string) error {
	if !IsRemote(p) {
		return os.Remove(p)
	}
	b, err := backendFor(ctx, p)
	if err != nil {
		return err
	}
	return b.remove(ctx, p)
}

// ReadFile reads a whole (small) local file or remote object: a manifest,
// a stats file, a paths list.
func ReadFile(ctx context.Context, p string) ([]byte, error) {
	f, err := Open(ctx, p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// Join appends slash-separated elements to a URL or a local path.
func Join(base string, elem ...string) string {
	if !IsRemote(base) {
		return filepath.Join(append([]string{base}, elem...)...)
	}
	s := strings.TrimRight(base, "/")
	for _, e := range elem {
		s += "/" + strings.TrimLeft(e, "/")
	}
	return s
}
