package shards

import (
	"fmt"
	"math"
	"strconv"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
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

// DefaultDocBatchBytes bounds a document shard's record batch: big enough
// that readers do not pay Arrow's per-batch zstd decoder set-up too often
// (see DefaultTokenBatchBytes), small enough to keep the writer's memory low.
const DefaultDocBatchBytes = 4 << 20

// DefaultTargetBytes is the default uncompressed size at which a shard is cut.
const DefaultTargetBytes = 64 << 20

// MaxShardMB is the largest shard size, in MiB, that a stage accepts
// (1 TiB). A shard is written batch by batch, so the bound is not about
// memory: it keeps a size given in MiB far from where shifting it to bytes
// overflows int64 (8 EiB), and from the sums of shard sizes that manifests
// and plans add up.
const MaxShardMB = 1 << 20

// ShardBytes converts a shard size in MiB (--shard-mb, shard_mb) to bytes.
// It refuses sizes that are not positive, round to no bytes at all, or are
// above MaxShardMB, rather than letting them fall back to the default or
// overflow.
func ShardBytes(mb float64) (int64, error) {
	v := strconv.FormatFloat(mb, 'f', -1, 64)
	switch {
	case math.IsNaN(mb):
		return 0, fmt.Errorf("shard size %s MiB is not a number", v)
	case mb <= 0:
		return 0, fmt.Errorf("shard size %s MiB must be positive", v)
	case mb > MaxShardMB:
		return 0, fmt.Errorf("shard size %s MiB is too large: at most %d MiB (1 TiB)", v, MaxShardMB)
	}
	n := int64(mb * (1 << 20))
	if n < 1 {
		return 0, fmt.Errorf("shard size %s MiB is under one byte", v)
	}
	return n, nil
}

// CheckTargetBytes validates a stage's TargetBytes: 0 means the default;
// anything else must be a positive size of at most MaxShardMB MiB.
func CheckTargetBytes(n int64) error {
	if n < 0 || n > MaxShardMB<<20 {
		return fmt.Errorf("shard size %d bytes out of range: give 1 byte to %d MiB (0 for the default %d MiB)", n, MaxShardMB, DefaultTargetBytes>>20)
	}
	return nil
}

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
	// BatchRows and BatchBytes bound an Arrow record batch (defaults 1024
	// rows and DefaultDocBatchBytes of data, whichever comes first).
	BatchRows  int
	BatchBytes int64
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
	shardSet
	opt DocWriterOptions
	b   *array.RecordBuilder
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
	if opt.BatchBytes <= 0 {
		opt.BatchBytes = DefaultDocBatchBytes
	}
	format := newArrowFormat(DocSchema(opt.Dropped))
	return &DocWriter{
		shardSet: newShardSet(dir, opt.Prefix, format, opt.FirstIndex, opt.TargetBytes, opt.BatchRows, opt.BatchBytes, opt.OnShard),
		opt:      opt,
		b:        format.b,
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
	appendDoc(w.b, d, w.opt.Dropped)
	if err := w.added(DocBytes(d), 0); err != nil {
		return err
	}
	if !w.opt.Manual && w.Full() {
		return w.Cut()
	}
	return nil
}

// appendDoc appends d as one row to b, a builder of DocSchema(dropped).
func appendDoc(b *array.RecordBuilder, d *Document, dropped bool) {
	f := b.Fields()
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
	if dropped {
		var dr Drop
		if d.Drop != nil {
			dr = *d.Drop
		}
		f[9].(*array.StringBuilder).Append(dr.Reason)
		f[10].(*array.StringBuilder).Append(dr.Value)
		f[11].(*array.StringBuilder).Append(dr.DupOf)
	}
}
