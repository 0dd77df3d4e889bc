package ablate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/smelt-dev/smelt/filter"
	"github.com/smelt-dev/smelt/shards"
)

// maxEvalLine bounds one JSONL line of an eval set.
const maxEvalLine = 64 << 20

// eachEvalDoc calls fn with every document of the set, in path order.
func eachEvalDoc(set EvalSet, fn func(id, text string) error) error {
	for _, p := range set.Paths {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("eval set %s: %w", set.Name, err)
		}
		switch {
		case fi.IsDir():
			r, err := shards.OpenDocDirs(p)
			if err != nil {
				return fmt.Errorf("eval set %s: %w", set.Name, err)
			}
			for {
				d, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					r.Close()
					return fmt.Errorf("eval set %s: %w", set.Name, err)
				}
				if err := fn(d.ID, d.Text); err != nil {
					r.Close()
					return err
				}
			}
			r.Close()
		case strings.HasSuffix(p, ".jsonl") || strings.HasSuffix(p, ".ndjson"):
			if err := eachJSONL(set.Name, p, fn); err != nil {
				return err
			}
		default:
			if fi.Size() > maxEvalLine*16 {
				return fmt.Errorf("eval set %s: %s is %d bytes; a text file is one document of at most %d", set.Name, p, fi.Size(), maxEvalLine*16)
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return fmt.Errorf("eval set %s: %w", set.Name, err)
			}
			if err := fn(filepath.Base(p), string(data)); err != nil {
				return err
			}
		}
	}
	return nil
}

func eachJSONL(set, path string, fn func(id, text string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("eval set %s: %w", set, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxEvalLine)
	var off int64
	for line := 1; sc.Scan(); line++ {
		b := sc.Bytes()
		start := off
		off += int64(len(b)) + 1
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		var rec struct {
			ID   any    `json:"id"`
			Text string `json:"text"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			return fmt.Errorf("eval set %s: %s line %d (offset %d): %w", set, path, line, start, err)
		}
		id := fmt.Sprintf("%s:%d", filepath.Base(path), line)
		if rec.ID != nil {
			id = fmt.Sprint(rec.ID)
		}
		if err := fn(id, rec.Text); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("eval set %s: %s: %w", set, path, err)
	}
	return nil
}

// buildIndex writes the 13-gram decontamination index of the eval sets to
// path and opens it.
func buildIndex(ctx context.Context, sets []EvalSet, path string) (*filter.Index, error) {
	b := &filter.IndexBuilder{TmpDir: filepath.Dir(path)}
	for _, s := range sets {
		set, err := b.AddSet(s.Name)
		if err != nil {
			return nil, err
		}
		if err := eachEvalDoc(s, func(id, text string) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return b.Add(set, id, text)
		}); err != nil {
			return nil, err
		}
	}
	if _, err := b.Write(path); err != nil {
		return nil, fmt.Errorf("decontamination index: %w", err)
	}
	return filter.OpenIndex(path)
}
