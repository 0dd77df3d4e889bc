package export

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sync/atomic"
)

// Reuse names a finished export whose compressed blocks a new export may
// copy instead of compressing them again: what a takedown needs, where
// the new inputs are the old ones with some documents removed. The caller
// promises that a document the new inputs hold under an id the earlier
// export held is the same document (same fields): a JSONL block is copied
// only where its uncompressed bytes are the new block's, a Parquet page
// group where its ids are the new group's (both from an earlier file that
// matches its recorded sha256). Under that promise the output is
// byte-identical to an export without Reuse: Reuse changes the cost,
// never the result.
type Reuse struct {
	// Dir is the earlier export's directory (with its export.json), made
	// with the same format and options.
	Dir string
	// Removed, if not nil, makes a stronger promise: each new input shard
	// holds exactly the documents of the earlier export's shard of the
	// same input and name, in the same order, less those whose ids are in
	// Removed (what a takedown's rewritten shards hold). The JSONL and
	// Parquet documents exporters then derive each file from the earlier
	// file alone (derive.go): a block or page group holding no removed
	// document is copied without reading the input shard, the others are
	// decoded from the earlier file, re-cut and compressed. A file the
	// promise does not fit (a sha256 that differs from its record, a
	// layout this exporter does not write, a kept count other than the
	// new shard's rows) is exported from its input shard as without
	// Removed, with a warning. The output is the same bytes either way.
	Removed map[string]bool
}

// reuseSet is an opened Reuse: the earlier export's per-shard output
// files, by the input shard they were written from.
type reuseSet struct {
	dir     string
	removed map[string]bool // Reuse.Removed
	files   map[reuseKey]FileInfo
	// rows are the earlier input shards' rows, by the same key.
	rows map[reuseKey]int64
	// pos is each new input's position among the inputs: the earlier
	// export's input at the same position, under the same name, is the
	// one it was written from (a run's inputs often share one name, the
	// source's, and their shards the names part-00000...).
	pos map[*Input]int
}

type reuseKey struct {
	input int
	name  string // the input's name
	shard string
}

// openReuse reads the earlier export named by r. It returns nil (export
// everything) when there is none to reuse: r is nil, or the earlier
// export is of another format, options or tokenizer, or not one file per
// input shard.
func openReuse(r *Reuse, opt Options, prov *Provenance, inputs []*Input) (*reuseSet, error) {
	if r == nil || r.Dir == "" {
		return nil, nil
	}
	if opt.Format != FormatParquet && opt.Format != FormatJSONL {
		return nil, nil
	}
	data, err := os.ReadFile(filepath.Join(r.Dir, SidecarName))
	if err != nil {
		return nil, fmt.Errorf("export: reuse: %w", err)
	}
	var old Provenance
	if err := json.Unmarshal(data, &old); err != nil {
		return nil, fmt.Errorf("export: reuse: %s: %w", filepath.Join(r.Dir, SidecarName), err)
	}
	a, b := old.Options, opt
	a.Progress, b.Progress, a.Reuse, b.Reuse = nil, nil, nil, nil
	if old.Format != opt.Format || !reflect.DeepEqual(a, b) || !reflect.DeepEqual(old.Tokenizer, prov.Tokenizer) {
		slog.Debug("export: not reusing an export of other options", "dir", r.Dir)
		return nil, nil
	}
	rs := &reuseSet{dir: r.Dir, removed: r.Removed, files: map[reuseKey]FileInfo{}, rows: map[reuseKey]int64{}, pos: map[*Input]int{}}
	for i, in := range inputs {
		rs.pos[in] = i
	}
	k := 0
	for i, in := range old.Inputs {
		for _, s := range in.Shards {
			if k >= len(old.Files) {
				return nil, nil
			}
			rs.files[reuseKey{i, in.Name, s.Name}] = old.Files[k]
			rs.rows[reuseKey{i, in.Name, s.Name}] = s.Rows
			k++
		}
	}
	if k != len(old.Files) {
		return nil, nil
	}
	return rs, nil
}

// earlierRows returns the rows of the earlier export's input shard that
// lookup's file was written from.
func (r *reuseSet) earlierRows(in *Input, shard string) int64 {
	return r.rows[reuseKey{r.pos[in], in.Name, shard}]
}

// lookup returns the path of the earlier export's file written from the
// input shard (the input at in's position, under its name; the shard's
// name), and its record.
func (r *reuseSet) lookup(in *Input, shard string) (string, FileInfo, bool) {
	if r == nil {
		return "", FileInfo{}, false
	}
	i, ok := r.pos[in]
	if !ok {
		return "", FileInfo{}, false
	}
	fi, ok := r.files[reuseKey{i, in.Name, shard}]
	if !ok {
		return "", FileInfo{}, false
	}
	return filepath.Join(r.dir, fi.Name), fi, true
}

// ReuseCounts returns how many compressed blocks (JSONL blocks, Parquet
// page groups) exports have copied from earlier exports (Options.Reuse),
// and how many they compressed, in this process so far.
func ReuseCounts() (copied, compressed int64) {
	return jsonlBlocksCopied.Load() + docGroupsCopied.Load() + tokenGroupsCopied.Load(),
		jsonlBlocksEncoded.Load() + docGroupsEncoded.Load() + tokenGroupsEncoded.Load()
}

var jsonlBlocksCopied, jsonlBlocksEncoded atomic.Int64
