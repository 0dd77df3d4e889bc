package lineage

import (
	"errors"
	"fmt"
	"os"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/smelt-dev/smelt/shards"
)

// filterDocShard writes the rows of the document shard src whose id is
// not in remove to the new file dst: the same schema and record batches,
// less the removed rows. It returns the new shard's info (Name, Rows,
// Bytes, DataBytes and SHA256; DataBytes counted as shards.DocBytes
// counts a document) and the number of rows removed. When no row is
// removed, or every row is, it writes nothing: the info then has Rows and
// DataBytes of what is kept, and no Name, Bytes or SHA256.
//
// shards.FilterDocShard does the work: it copies the text column's zstd
// frames that hold no removed document without decompressing them, and
// recompresses only the frames a removal touches (docs/formats.md). A
// shard whose layout it does not handle goes through Arrow Go's reader
// (filterDocShardArrow).
func filterDocShard(src, dst string, known shards.ShardInfo, remove map[string]bool) (shards.ShardInfo, int64, error) {
	info, removed, err := shards.FilterDocShard(src, dst, known, func(id string) bool { return remove[id] })
	if errors.Is(err, shards.ErrFilterFallback) {
		return filterDocShardArrow(src, dst, remove)
	}
	return info, removed, err
}

// filterDocShardArrow is filterDocShard through Arrow Go's reader, for
// layouts shards.FilterDocShard does not handle: filtered column by column
// (the kept runs of each column sliced and concatenated), so that no row
// is decoded into a Document and encoded again; every buffer is
// decompressed and compressed again.
func filterDocShardArrow(src, dst string, remove map[string]bool) (shards.ShardInfo, int64, error) {
	var info shards.ShardInfo
	f, err := os.Open(src)
	if err != nil {
		return info, 0, err
	}
	defer f.Close()
	r, err := ipc.NewFileReader(f, ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		return info, 0, fmt.Errorf("%s: not a readable Arrow IPC file: %w", src, err)
	}
	defer r.Close()
	schema := r.Schema()
	col := func(name string) int {
		if idx := schema.FieldIndices(name); len(idx) > 0 {
			return idx[0]
		}
		return -1
	}
	idCol := col(shards.ColID)
	if idCol < 0 {
		return info, 0, fmt.Errorf("%s: not a document shard: no %q column", src, shards.ColID)
	}
	// The string columns a document's bytes count (shards.DocBytes), and
	// the three a drop adds when it has a reason.
	var counted []int
	for _, name := range []string{shards.ColID, shards.ColSource, shards.ColURL, shards.ColDate, shards.ColLang, shards.ColText, shards.ColMeta} {
		if c := col(name); c >= 0 {
			counted = append(counted, c)
		}
	}
	reasonCol := col(shards.ColReason)
	var dropCols []int
	for _, name := range []string{shards.ColReason, shards.ColRuleValue, shards.ColDupOf} {
		if c := col(name); c >= 0 {
			dropCols = append(dropCols, c)
		}
	}
	strCol := func(rec arrow.Record, c int) (*array.String, error) {
		a, ok := rec.Column(c).(*array.String)
		if !ok {
			return nil, fmt.Errorf("%s: column %q is %s, want utf8", src, schema.Field(c).Name, rec.Column(c).DataType())
		}
		return a, nil
	}
	strLen := func(a *array.String, i int) int64 {
		if a.IsNull(i) {
			return 0
		}
		return int64(a.ValueLen(i))
	}

	var out *shards.IPCFile
	defer func() {
		if out != nil {
			out.Abort()
		}
	}()
	var removed int64
	var kept []arrow.Record // batches kept before the first removal (written once one is found)
	defer func() {
		for _, k := range kept {
			k.Release()
		}
	}()
	emit := func(rec arrow.Record) error {
		if out == nil {
			o, err := shards.CreateIPCFile(dst, schema)
			if err != nil {
				return err
			}
			out = o
			for _, k := range kept {
				if err := out.Write(k); err != nil {
					return err
				}
				k.Release()
			}
			kept = nil
		}
		if rec == nil {
			return nil
		}
		return out.Write(rec)
	}
	for b := 0; b < r.NumRecords(); b++ {
		rec, err := r.RecordAt(b)
		if err != nil {
			return info, 0, fmt.Errorf("%s: record batch %d: %w", src, b, err)
		}
		ids, err := strCol(rec, idCol)
		if err != nil {
			rec.Release()
			return info, 0, err
		}
		strs := make([]*array.String, 0, len(counted))
		for _, c := range counted {
			a, err := strCol(rec, c)
			if err != nil {
				rec.Release()
				return info, 0, err
			}
			strs = append(strs, a)
		}
		var reason *array.String
		var drops []*array.String
		if reasonCol >= 0 {
			if reason, err = strCol(rec, reasonCol); err != nil {
				rec.Release()
				return info, 0, err
			}
			for _, c := range dropCols {
				a, err := strCol(rec, c)
				if err != nil {
					rec.Release()
					return info, 0, err
				}
				drops = append(drops, a)
			}
		}
		// Runs of kept rows [from, to).
		var runs [][2]int64
		n := int(rec.NumRows())
		for i := 0; i < n; i++ {
			if remove[ids.Value(i)] {
				removed++
				continue
			}
			info.Rows++
			bytes := int64(16)
			for _, a := range strs {
				bytes += strLen(a, i)
			}
			if reason != nil && strLen(reason, i) > 0 {
				for _, a := range drops {
					bytes += strLen(a, i)
				}
			}
			info.DataBytes += bytes
			if k := len(runs); k > 0 && runs[k-1][1] == int64(i) {
				runs[k-1][1]++
			} else {
				runs = append(runs, [2]int64{int64(i), int64(i) + 1})
			}
		}
		switch {
		case len(runs) == 0:
			rec.Release()
		case len(runs) == 1 && runs[0][0] == 0 && runs[0][1] == int64(n):
			// Nothing removed from this batch: written as it is.
			if removed == 0 {
				kept = append(kept, rec)
				continue
			}
			err := emit(rec)
			rec.Release()
			if err != nil {
				return info, 0, err
			}
		default:
			nrec, err := filterRecord(rec, runs)
			rec.Release()
			if err != nil {
				return info, 0, fmt.Errorf("%s: record batch %d: %w", src, b, err)
			}
			err = emit(nrec)
			nrec.Release()
			if err != nil {
				return info, 0, err
			}
		}
	}
	if out == nil && removed > 0 && info.Rows > 0 {
		// Whole batches kept, then only whole batches removed.
		if err := emit(nil); err != nil {
			return info, 0, err
		}
	}
	if out == nil {
		// Nothing removed, or nothing left.
		return info, removed, nil
	}
	written, err := out.Commit()
	out = nil
	if err != nil {
		return info, 0, err
	}
	written.DataBytes = info.DataBytes
	if written.Rows != info.Rows {
		return info, 0, fmt.Errorf("%s: internal error: wrote %d rows, kept %d", dst, written.Rows, info.Rows)
	}
	return written, removed, nil
}

// filterRecord returns the rows runs of rec (each [from, to)) as one
// record batch.
func filterRecord(rec arrow.Record, runs [][2]int64) (arrow.Record, error) {
	var rows int64
	for _, r := range runs {
		rows += r[1] - r[0]
	}
	cols := make([]arrow.Array, rec.NumCols())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	parts := make([]arrow.Array, len(runs))
	for c := range cols {
		for k, r := range runs {
			parts[k] = array.NewSlice(rec.Column(c), r[0], r[1])
		}
		a, err := array.Concatenate(parts, memory.DefaultAllocator)
		for _, p := range parts {
			p.Release()
		}
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", rec.Schema().Field(c).Name, err)
		}
		cols[c] = a
	}
	return array.NewRecord(rec.Schema(), cols, rows), nil
}
