package export

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/smelt-dev/smelt/shards"
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
	// rows and sha are the earlier input shards' rows and sha256, by the
	// same key.
	rows map[reuseKey]int64
	sha  map[reuseKey]string
	// sameWriter is whether the earlier export was written by this code
	// (its Writer is writerID()): only then may a file be reused whole.
	sameWriter bool
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
	rs := &reuseSet{dir: r.Dir, removed: r.Removed, files: map[reuseKey]FileInfo{}, rows: map[reuseKey]int64{},
		sha: map[reuseKey]string{}, sameWriter: old.Writer != "" && old.Writer == writerID(), pos: map[*Input]int{}}
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
			rs.sha[reuseKey{i, in.Name, s.Name}] = s.SHA256
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

// unchanged returns the earlier export's file written from an input
// shard byte-identical to info (the same name at the same input
// position, the same sha256 and rows), when this code wrote that export:
// the file a new export would write from the shard is that one, byte for
// byte, since the format, options and tokenizer are the same (openReuse).
// Only under Reuse.Removed, whose promise already takes an earlier file
// that matches its record for the export of its shard (derive.go); a
// plain Reuse copies a block only where its bytes are the new block's.
func (r *reuseSet) unchanged(in *Input, info shards.ShardInfo) (string, FileInfo, bool) {
	if r == nil || r.removed == nil || !r.sameWriter || info.SHA256 == "" {
		return "", FileInfo{}, false
	}
	p, fi, ok := r.lookup(in, info.Name)
	if !ok || fi.SHA256 == "" {
		return "", FileInfo{}, false
	}
	k := reuseKey{r.pos[in], in.Name, info.Name}
	if r.sha[k] != info.SHA256 || r.rows[k] != info.Rows {
		return "", FileInfo{}, false
	}
	return p, fi, true
}

// writerID names the code that writes an export's bytes: the layout of
// this package's files (exportLayout) and the compression library's
// version, since the same input compressed by another version may come
// out as other bytes.
var writerID = sync.OnceValue(func() string {
	id := fmt.Sprintf("smelt-export/%d", exportLayout)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/klauspost/compress" {
				v := m.Version
				if m.Replace != nil {
					v = m.Replace.Path + "@" + m.Replace.Version
				}
				id += " " + m.Path + "@" + v
			}
		}
	}
	return id
})

// exportLayout is the version of the bytes the JSONL and Parquet
// exporters write for given inputs and options: raise it with any change
// to them (block or page cuts, metadata), so that a later export does not
// reuse whole files written the earlier way.
const exportLayout = 1

// filesLinked counts the files exports published as links to an earlier
// export's (tests read it).
var filesLinked atomic.Int64

// ReuseCounts returns how many compressed blocks (JSONL blocks, Parquet
// page groups) exports have copied from earlier exports (Options.Reuse),
// and how many they compressed, in this process so far.
func ReuseCounts() (copied, compressed int64) {
	return jsonlBlocksCopied.Load() + docGroupsCopied.Load() + tokenGroupsCopied.Load(),
		jsonlBlocksEncoded.Load() + docGroupsEncoded.Load() + tokenGroupsEncoded.Load()
}

var jsonlBlocksCopied, jsonlBlocksEncoded atomic.Int64
