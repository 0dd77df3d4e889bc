package ingest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/smelt-dev/smelt/store"
)

// StdinName is the input name that reads standard input.
const StdinName = "-"

// inputFile is what an input's bytes are read from: a local file,
// standard input or a remote object (store.File).
type inputFile interface {
	io.Reader
	io.Seeker
	io.Closer
}

// input is one opened input: the file (for Seek, when it is seekable) and
// the reader its bytes come from (the file itself, or a buffered reader
// holding the bytes sniffed from a stream).
type input struct {
	f inputFile
	r io.Reader
	// seekable: f can go back to any offset, so that a large gzip member
	// is checked, then decompressed again from the file (a regular local
	// file, or a remote object read with ranged requests), instead of
	// spooled to a temporary file (a stream).
	seekable bool
	// stdin: f is standard input, which Close leaves open.
	stdin bool
}

// IsStream reports whether path is read as a stream: standard input ("-"),
// a pipe (such as the /dev/fd/N of a shell's process substitution), a
// FIFO, a character device or anything else that is not a regular file.
// A stream is read once, front to back; it has no size or checksum known
// in advance. A URL (s3://, https://) is not a stream: it has a size and
// is read with ranged requests.
func IsStream(path string) bool {
	if path == StdinName {
		return true
	}
	if store.IsRemote(path) {
		return false
	}
	fi, err := os.Stat(path)
	return err == nil && !fi.Mode().IsRegular() && !fi.IsDir()
}

// openInput opens path ("-": standard input; a URL: a remote object, see
// openRemote).
func openInput(ctx context.Context, path string) (*input, error) {
	if path == StdinName {
		return &input{f: os.Stdin, r: os.Stdin, stdin: true}, nil
	}
	if store.IsRemote(path) {
		f, err := openRemote(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
		return &input{f: f, r: f, seekable: true}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	in := &input{f: f, r: f}
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		in.seekable = true
	}
	return in, nil
}

func (in *input) close() error {
	if in.stdin {
		return nil
	}
	return in.f.Close()
}

// sniffStream picks the format of a stream from its name or, when the
// name does not say, from its first bytes, which stay in in.r.
func sniffStream(path string, in *input) Format {
	if f, ok := formatFromName(path); ok {
		return f
	}
	br := bufio.NewReaderSize(in.r, 64<<10)
	in.r = br
	raw, _ := br.Peek(8 << 10)
	head := raw
	switch sniffCompression(raw) {
	case compGzip:
		if zr, err := gzip.NewReader(bytes.NewReader(raw)); err == nil {
			head, _ = io.ReadAll(io.LimitReader(zr, 4096))
		}
	case compZstd:
		if zr, err := zstd.NewReader(bytes.NewReader(raw), zstd.WithDecoderConcurrency(1)); err == nil {
			head, _ = io.ReadAll(io.LimitReader(zr, 4096))
			zr.Close()
		}
	}
	return sniffFormat(head)
}
