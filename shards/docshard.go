package shards

import (
	"fmt"
	"path/filepath"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// Column names of document shards.
const (
	ColID        = "id"
	ColSource    = "source"
	ColURL       = "url"
	ColDate      = "date"
	ColLang      = "lang"
	ColLangScore = "lang_score"
	ColQuality   = "quality"
	ColText      = "text"
	ColMeta      = "meta"
	ColReason    = "reason"
	ColRuleValue = "rule_value"
	ColDupOf     = "dup_of"
)

// DocSchema returns the Arrow schema of document shards. Dropped side
// outputs carry three more columns: reason, rule_value and dup_of.
func DocSchema(dropped bool) *arrow.Schema {
	fields := []arrow.Field{
		{Name: ColID, Type: arrow.BinaryTypes.String},
		{Name: ColSource, Type: arrow.BinaryTypes.String},
		{Name: ColURL, Type: arrow.BinaryTypes.String},
		{Name: ColDate, Type: arrow.BinaryTypes.String},
		{Name: ColLang, Type: arrow.BinaryTypes.String},
		{Name: ColLangScore, Type: arrow.PrimitiveTypes.Float64},
		{Name: ColQuality, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: ColText, Type: arrow.BinaryTypes.String},
		{Name: ColMeta, Type: arrow.BinaryTypes.String},
	}
	if dropped {
		fields = append(fields,
			arrow.Field{Name: ColReason, Type: arrow.BinaryTypes.String},
			arrow.Field{Name: ColRuleValue, Type: arrow.BinaryTypes.String},
			arrow.Field{Name: ColDupOf, Type: arrow.BinaryTypes.String},
		)
	}
	md := arrow.NewMetadata([]string{"smelt.format"}, []string{fmt.Sprintf("documents/v%d", FormatVersion)})
	return arrow.NewSchema(fields, &md)
}

// FormatVersion is the version of smelt's shard and manifest formats.
const FormatVersion = 1

// DefaultTargetBytes is the default uncompressed size at which a shard is cut.
const DefaultTargetBytes = 64 << 20

// DocWriterOptions configure a DocWriter. The zero value is useful.
type DocWriterOptions struct {
	// TargetBytes is the uncompressed size at which a shard is cut
	// (default DefaultTargetBytes). A shard may exceed it by one document.
	TargetBytes int64
	// Prefix starts every shard name (default "part"); shards are named
	// PREFIX-NNNNN.arrow with a zero-based index.
	Prefix string
	// Dropped adds the reason, rule_value and dup_of columns.
	Dropped bool
	// FirstIndex is the index of the first shard (a resumed run continues
	// the numbering).
	FirstIndex int
	// BatchRows is the number of rows per Arrow record batch (default 1024).
	BatchRows int
	// Manual turns off cutting inside Write: the caller cuts with Cut when
	// Full reports true (used to cut several outputs at the same point).
	Manual bool
	// OnShard is called after each shard is published.
	OnShard func(ShardInfo) error
}

// DocWriter writes documents into size-bounded Arrow IPC shards in a
// directory. Shard contents and names depend only on the documents written
// and the options, so the same input gives byte-identical shards.
type DocWriter struct {
	dir    string
	opt    DocWriterOptions
	schema *arrow.Schema
	b      *array.RecordBuilder

	file      *IPCFile
	index     int
	batchRows int
	shardData int64
	shardRows int64
	shards    []ShardInfo
}

// NewDocWriter writes shards into dir, which must exist.
func NewDocWriter(dir string, opt DocWriterOptions) *DocWriter {
	if opt.TargetBytes <= 0 {
		opt.TargetBytes = DefaultTargetBytes
	}
	if opt.Prefix == "" {
		opt.Prefix = "part"
	}
	if opt.BatchRows <= 0 {
		opt.BatchRows = 1024
	}
	schema := DocSchema(opt.Dropped)
	return &DocWriter{
		dir:    dir,
		opt:    opt,
		schema: schema,
		b:      array.NewRecordBuilder(memory.DefaultAllocator, schema),
		index:  opt.FirstIndex,
	}
}

// ShardName is the file name of shard i.
func ShardName(prefix string, i int) string { return fmt.Sprintf("%s-%05d.arrow", prefix, i) }

// DocBytes is the uncompressed size a document counts for in shard sizing.
func DocBytes(d *Document) int64 {
	n := len(d.ID) + len(d.Source) + len(d.URL) + len(d.Date) + len(d.Lang) + 16 + len(d.Text) + len(d.Meta)
	if d.Drop != nil {
		n += len(d.Drop.Reason) + len(d.Drop.Value) + len(d.Drop.DupOf)
	}
	return int64(n)
}

// Write appends a document.
func (w *DocWriter) Write(d *Document) error {
	f := w.b.Fields()
	f[0].(*array.StringBuilder).Append(d.ID)
	f[1].(*array.StringBuilder).Append(d.Source)
	f[2].(*array.StringBuilder).Append(d.URL)
	f[3].(*array.StringBuilder).Append(d.Date)
	f[4].(*array.StringBuilder).Append(d.Lang)
	f[5].(*array.Float64Builder).Append(d.LangScore)
	if d.HasQuality {
		f[6].(*array.Float64Builder).Append(d.Quality)
	} else {
		f[6].(*array.Float64Builder).AppendNull()
	}
	f[7].(*array.StringBuilder).Append(d.Text)
	f[8].(*array.StringBuilder).Append(d.Meta)
	if w.opt.Dropped {
		var dr Drop
		if d.Drop != nil {
			dr = *d.Drop
		}
		f[9].(*array.StringBuilder).Append(dr.Reason)
		f[10].(*array.StringBuilder).Append(dr.Value)
		f[11].(*array.StringBuilder).Append(dr.DupOf)
	}
	w.batchRows++
	w.shardRows++
	w.shardData += DocBytes(d)
	if w.batchRows >= w.opt.BatchRows {
		if err := w.flushBatch(); err != nil {
			return err
		}
	}
	if !w.opt.Manual && w.Full() {
		return w.Cut()
	}
	return nil
}

// Full reports whether the current shard has reached the target size.
func (w *DocWriter) Full() bool { return w.shardData >= w.opt.TargetBytes }

// Empty reports whether the current shard has no documents yet.
func (w *DocWriter) Empty() bool { return w.shardRows == 0 }

func (w *DocWriter) flushBatch() error {
	if w.batchRows == 0 {
		return nil
	}
	rec := w.b.NewRecord()
	defer rec.Release()
	w.batchRows = 0
	if w.file == nil {
		f, err := CreateIPCFile(filepath.Join(w.dir, ShardName(w.opt.Prefix, w.index)), w.schema)
		if err != nil {
			return err
		}
		w.file = f
	}
	return w.file.Write(rec)
}

// Cut finishes the current shard, if it has any documents, and publishes it.
func (w *DocWriter) Cut() error {
	if w.shardRows == 0 {
		return nil
	}
	if err := w.flushBatch(); err != nil {
		return err
	}
	info, err := w.file.Commit()
	w.file = nil
	if err != nil {
		return err
	}
	info.DataBytes = w.shardData
	w.shards = append(w.shards, info)
	w.index++
	w.shardData, w.shardRows = 0, 0
	if w.opt.OnShard != nil {
		return w.opt.OnShard(info)
	}
	return nil
}

// Close publishes the last shard. Documents written after Close are an error.
func (w *DocWriter) Close() error {
	err := w.Cut()
	w.b.Release()
	return err
}

// Abort discards the shard in progress (published shards stay).
func (w *DocWriter) Abort() {
	if w.file != nil {
		w.file.Abort()
		w.file = nil
	}
}

// Shards lists the shards published so far by this writer.
func (w *DocWriter) Shards() []ShardInfo { return w.shards }

// NextIndex is the index the next shard will get.
func (w *DocWriter) NextIndex() int { return w.index }
