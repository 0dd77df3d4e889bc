package ingest

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

// dataPath returns ../shared/data (relative to the repository root) or
// skips the test when it is absent, as in a user's clone.
func dataPath(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join("..", "..", "shared", "data", rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared test data not available (%s): %v", p, err)
	}
	return p
}

// tally is what one input file turned into.
type tally struct {
	types  map[string]int // WARC-Type of records read
	skips  map[string]int // skip reasons (reader and Convert)
	errs   []*RecordError
	docs   []*shards.Document
	recs   int
	fatal  error
	byKind map[string]int
}

func readAllRecords(t testing.TB, path string, f Format, opt ReaderOptions) *tally {
	t.Helper()
	r, err := Open(path, f, opt)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	defer r.Close()
	out := &tally{types: map[string]int{}, skips: map[string]int{}, byKind: map[string]int{}}
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if re, ok := IsRecordError(err); ok {
				out.errs = append(out.errs, re)
				out.byKind[re.Kind]++
				continue
			}
			out.fatal = err
			break
		}
		out.recs++
		out.types[rec.Type]++
		doc, skip, err := Convert(rec, "test")
		switch {
		case err != nil:
			re, ok := IsRecordError(err)
			if !ok {
				t.Fatalf("Convert returned a non-RecordError: %v", err)
			}
			out.errs = append(out.errs, re)
			out.byKind[re.Kind]++
		case skip != "":
			out.skips[skip]++
		default:
			out.docs = append(out.docs, doc)
		}
	}
	return out
}
