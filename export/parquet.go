package export

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/klauspost/compress/zstd"
	"github.com/smelt-dev/smelt/shards"
)

// Parquet column names. Documents: id, source, url, date, text, lang,
// lang_score, quality (null when unscored) and metadata (the document's
// meta JSON as text, null when empty). Tokens: id, source, input_ids (the
// name Hugging Face trainers read; list<uint16>, or list<uint32> past
// 65,536 ids, ending with the end-of-text id) and n_tokens.
const (
	ColMetadata = "metadata"
	ColInputIDs = "input_ids"
)

// ParquetDocSchema is the Arrow schema of exported Parquet documents.
func ParquetDocSchema() *arrow.Schema {
	s := arrow.BinaryTypes.String
	return arrow.NewSchema([]arrow.Field{
		{Name: shards.ColID, Type: s},
		{Name: shards.ColSource, Type: s},
		{Name: shards.ColURL, Type: s},
		{Name: shards.ColDate, Type: s},
		{Name: shards.ColText, Type: s},
		{Name: shards.ColLang, Type: s},
		{Name: shards.ColLangScore, Type: arrow.PrimitiveTypes.Float64},
		{Name: shards.ColQuality, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: ColMetadata, Type: s, Nullable: true},
	}, nil)
}

// ParquetTokenSchema is the Arrow schema of exported Parquet token ids.
func ParquetTokenSchema(tok *shards.TokenizerInfo) *arrow.Schema {
	var elem arrow.DataType = arrow.PrimitiveTypes.Uint16
	if tok.VocabSize > 1<<16 {
		elem = arrow.PrimitiveTypes.Uint32
	}
	md := arrow.NewMetadata([]string{"smelt.tokenizer", "smelt.vocab_size", "smelt.eot"},
		[]string{tok.Name, fmt.Sprint(tok.VocabSize), fmt.Sprint(tok.EOT)})
	return arrow.NewSchema([]arrow.Field{
		{Name: shards.ColID, Type: arrow.BinaryTypes.String},
		{Name: shards.ColSource, Type: arrow.BinaryTypes.String},
		{Name: ColInputIDs, Type: arrow.ListOfNonNullable(elem)},
		{Name: shards.ColNTokens, Type: arrow.PrimitiveTypes.Int64},
	}, &md)
}

// perShard is the part of the Parquet and JSONL exporters that writes one
// output file per input shard (part-NNNNN.EXT, numbered over all inputs):
// a file is published whole, so a resumed export only needs the list of
// the files finished before its checkpoint.
type perShard struct {
	out     string
	pending []FileInfo
	// reuse, if not nil, is an earlier export whose blocks may be copied.
	reuse *reuseSet
}

func (e *perShard) resume(*checkpoint) error { return nil }
func (e *perShard) close()                   {}

func (e *perShard) save(cp *checkpoint) error {
	cp.Files = append(cp.Files, e.pending...)
	e.pending = e.pending[:0]
	return nil
}

func (e *perShard) finish(_ context.Context, cp *checkpoint) ([]FileInfo, error) {
	return cp.Files, nil
}

// write publishes one output file written by fn, and records it.
func (e *perShard) write(name string, fi FileInfo, fn func(io.Writer, *FileInfo) error) error {
	fi.Name = name
	a, err := shards.CreateAtomic(filepath.Join(e.out, name))
	if err != nil {
		return err
	}
	defer a.Abort()
	w := bufio.NewWriterSize(a, 1<<20)
	if err := fn(w, &fi); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fi.Bytes, fi.SHA256 = a.Size(), a.SHA256()
	if err := a.Commit(); err != nil {
		return err
	}
	e.pending = append(e.pending, fi)
	return nil
}

// linkEarlier publishes the earlier export's file p (its record ofi) as
// name, as a hard link, where the input shard is unchanged
// (reuseSet.unchanged): a takedown then leaves the files of the shards it
// did not touch as they are instead of writing them again. It returns
// false where it cannot (the file does not match its record, or the
// filesystem does not link), and the caller writes the file.
func (e *perShard) linkEarlier(name, p string, ofi FileInfo) bool {
	if err := verifyFile(p, ofi); err != nil {
		slog.Warn("export: reuse: not reusing an earlier file", "file", p, "err", err)
		return false
	}
	if err := shards.LinkAtomic(p, filepath.Join(e.out, name)); err != nil {
		slog.Debug("export: reuse: cannot link; writing the file", "file", p, "err", err)
		return false
	}
	fi := ofi
	fi.Name = name
	e.pending = append(e.pending, fi)
	filesLinked.Add(1)
	return true
}

// parquetExporter writes one Parquet file per input shard: part-NNNNN.parquet.
type parquetExporter struct {
	perShard
	opt     Options
	tok     *shards.TokenizerInfo // set for token shards
	buf     tokenBufs
	fileBuf []byte // the shard being read
	// For documents: the page codec and the previous file's writer
	// (buffers), kept from one file to the next.
	docCodec *pageCodec
	tokCodec *pageCodec
	docPrev  *docParquet
}

// parquetCodec is the Parquet codec of a Compression option: zstd (the
// default), snappy or none.
func parquetCodec(name string) compress.Compression {
	switch name {
	case "snappy":
		return compress.Codecs.Snappy
	case "none":
		return compress.Codecs.Uncompressed
	}
	return compress.Codecs.Zstd
}

func (e *parquetExporter) shard(ctx context.Context, in *Input, path string, info shards.ShardInfo, index int) error {
	name := fmt.Sprintf("part-%05d.parquet", index)
	if p, ofi, ok := e.reuse.unchanged(in, info); ok && e.linkEarlier(name, p, ofi) {
		return nil
	}
	if e.tok != nil {
		return e.write(name, FileInfo{Role: "tokens"}, func(w io.Writer, fi *FileInfo) error {
			return e.writeTokens(ctx, w, in, path, info, fi)
		})
	}
	if old, ofi, ok := e.reuse.lookup(in, info.Name); ok && e.reuse.removed != nil {
		if err := e.docPageCodec(); err != nil {
			return err
		}
		groups, err := readPageGroups(old, ofi, e.docCodec, pageLayout{pages: docPagesValue(), ncols: docColumns, list: -1})
		if err == nil {
			err = e.write(name, FileInfo{Role: "documents"}, func(w io.Writer, fi *FileInfo) error {
				return e.deriveDocs(ctx, w, groups, e.reuse.earlierRows(in, info.Name), info, fi)
			})
			if err == nil || !errors.Is(err, errDerive) {
				return err
			}
		}
		slog.Warn("export: reuse: not deriving from the earlier file; exporting it from its shard", "file", old, "err", err)
	}
	return e.write(name, FileInfo{Role: "documents"}, func(w io.Writer, fi *FileInfo) error {
		return e.writeDocs(ctx, w, in, path, info, fi)
	})
}

// forEachDoc calls fn with every document of a document shard, after
// checking the shard against its manifest entry; it returns the number of
// documents, which must be the entry's.
func forEachDoc(ctx context.Context, path string, info shards.ShardInfo, fn func(*shards.Document) error) (int64, error) {
	// One read of the file, checked against the manifest and decoded by
	// the fast reader where the layout allows (shards.OpenDocShardInfo).
	r, err := shards.OpenDocShardInfo(path, info, true)
	if err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	defer r.Close()
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		d, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, fmt.Errorf("export: %w", err)
		}
		if err := fn(d); err != nil {
			return n, err
		}
		n++
	}
	docsReadFromShards.Add(n)
	if n != info.Rows {
		return n, fmt.Errorf("export: %s: read %d documents, its manifest says %d", path, n, info.Rows)
	}
	return n, nil
}

func (e *parquetExporter) writeTokens(ctx context.Context, w io.Writer, in *Input, path string, info shards.ShardInfo, fi *FileInfo) error {
	if e.tokCodec == nil {
		// zstd's fastest level for token pages: on GPT-2 ids (distinct
		// real text) level 1 compressed 240 MB/s to 69 % of the size,
		// level 3 (Arrow's default) 136 MB/s to 64 %.
		var err error
		if e.tokCodec, err = newPageCodec(parquetCodec(e.opt.Compression), zstd.SpeedFastest); err != nil {
			return err
		}
	}
	var reuse func([]byte) *pageReuse
	if old, ofi, ok := e.reuse.lookup(in, info.Name); ok {
		reuse = func(dict []byte) *pageReuse {
			r, err := loadPageReuse(old, ofi, e.tokCodec, pageLayout{pages: tokenPagesValue(), ncols: 4, list: 2, dict: dict})
			if err != nil {
				slog.Warn("export: not reusing an earlier Parquet file", "file", old, "err", err)
				return nil
			}
			return r
		}
	}
	tp, err := newTokenParquet(w, e.tok, e.tokCodec, e.opt.RowGroupBytes, &e.buf, reuse)
	if err != nil {
		return err
	}
	err = forEachTokenBatch(path, info, e.tok.VocabSize, &e.fileBuf, func(tb *tokenBatch) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		for i := 0; i < tb.rows(); i++ {
			lo, hi := tb.offs[i], tb.offs[i+1]
			var err error
			if tb.u32 != nil {
				err = tp.add(tb.ids.Value(i), tb.srcs.Value(i), nil, tb.u32[lo:hi])
			} else {
				err = tp.add(tb.ids.Value(i), tb.srcs.Value(i), tb.u16[lo:hi], nil)
			}
			if err != nil {
				return err
			}
			fi.Docs++
			fi.Tokens += int64(hi - lo)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tp.close()
}
