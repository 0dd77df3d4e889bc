package tokenize

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	tiktoken "github.com/pkoukk/tiktoken-go"
	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"
)

// Test helpers shared by the exactness tests, the fuzz test and the
// benchmarks: the reference implementation (tiktoken-go, test-only) and the
// shared data directory.

var allEncodings = []string{"r50k_base", "p50k_base", "cl100k_base", "o200k_base"}

var (
	refMu    sync.Mutex
	refCache = map[string]*tiktoken.Tiktoken{}
)

func refEncoding(tb testing.TB, name string) *tiktoken.Tiktoken {
	tb.Helper()
	refMu.Lock()
	defer refMu.Unlock()
	if e := refCache[name]; e != nil {
		return e
	}
	tiktoken.SetBpeLoader(tiktoken_loader.NewOfflineLoader())
	e, err := tiktoken.GetEncoding(name)
	if err != nil {
		tb.Fatalf("tiktoken-go %s: %v", name, err)
	}
	refCache[name] = e
	return e
}

func mustGet(tb testing.TB, name string) *Tokenizer {
	tb.Helper()
	t, err := Get(name)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// refEncodeOrdinary runs tiktoken-go. It sees text as runes, so invalid
// UTF-8 bytes become U+FFFD; callers pass valid UTF-8.
func refEncodeOrdinary(e *tiktoken.Tiktoken, text string) []uint32 {
	ids := e.EncodeOrdinary(text)
	out := make([]uint32, len(ids))
	for i, id := range ids {
		out[i] = uint32(id)
	}
	return out
}

// asRunes is the text tiktoken-go actually encodes: each invalid UTF-8 byte
// replaced by U+FFFD.
func asRunes(s string) string { return string([]rune(s)) }

func sharedDataDir(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join("..", "..", "shared", "data")
	if _, err := os.Stat(dir); err != nil {
		tb.Skipf("shared test data not found at %s (only present in the smelt workspace): %v", dir, err)
	}
	return dir
}

// readMaybeGzip reads a file, decompressing .gz; a truncated gzip stream
// yields what decompressed before the cut.
func readMaybeGzip(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(path, ".gz") {
		return raw, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(zr)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && len(out) == 0 {
		return nil, err
	}
	return out, nil
}

// sharedTexts returns every file under the shared data directory,
// decompressed, keyed by relative path.
func sharedTexts(tb testing.TB) map[string]string {
	tb.Helper()
	dir := sharedDataDir(tb)
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := readMaybeGzip(path)
		if err != nil {
			tb.Logf("skipping %s: %v", path, err)
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		out[rel] = string(b)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
