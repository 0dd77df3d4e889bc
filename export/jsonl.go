package export

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/smelt-dev/smelt/shards"
)

// DolmaDoc is one line of a JSONL export, in Dolma's document layout: id,
// text, source, created (the capture date, when known) and metadata.
type DolmaDoc struct {
	ID       string    `json:"id"`
	Text     string    `json:"text"`
	Source   string    `json:"source"`
	Created  string    `json:"created,omitempty"`
	Metadata DolmaMeta `json:"metadata"`
}

// DolmaMeta is a JSONL document's metadata: smelt's fields, and the
// document's own meta object (WARC headers, HTTP status, ...) under meta.
type DolmaMeta struct {
	URL       string          `json:"url,omitempty"`
	Lang      string          `json:"lang,omitempty"`
	LangScore float64         `json:"lang_score"`
	Quality   *float64        `json:"quality,omitempty"`
	Meta      json.RawMessage `json:"meta,omitempty"`
}

// jsonlExporter writes one compressed JSONL file per input document
// shard: part-NNNNN.jsonl.zst (or .jsonl.gz).
type jsonlExporter struct {
	perShard
	opt Options
}

func (e *jsonlExporter) shard(ctx context.Context, in *Input, path string, info shards.ShardInfo, index int) error {
	ext := ".jsonl.zst"
	if e.opt.Compression == "gzip" {
		ext = ".jsonl.gz"
	}
	return e.write(fmt.Sprintf("part-%05d%s", index, ext), FileInfo{Role: "documents"}, func(w io.Writer, fi *FileInfo) error {
		return e.writeDocs(ctx, w, path, info, fi)
	})
}

func (e *jsonlExporter) writeDocs(ctx context.Context, w io.Writer, path string, info shards.ShardInfo, fi *FileInfo) error {
	var cw io.WriteCloser
	if e.opt.Compression == "gzip" {
		cw = gzip.NewWriter(w)
	} else {
		// One encoder goroutine: the output is then the same bytes on
		// any machine.
		zw, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return fmt.Errorf("export: zstd: %w", err)
		}
		cw = zw
	}
	var line bytes.Buffer
	enc := json.NewEncoder(&line)
	enc.SetEscapeHTML(false)
	n, err := forEachDoc(ctx, path, info, func(d *shards.Document) error {
		doc := DolmaDoc{ID: d.ID, Text: d.Text, Source: d.Source, Created: d.Date,
			Metadata: DolmaMeta{URL: d.URL, Lang: d.Lang, LangScore: d.LangScore}}
		if d.HasQuality {
			q := d.Quality
			doc.Metadata.Quality = &q
		}
		if d.Meta != "" {
			if json.Valid([]byte(d.Meta)) {
				doc.Metadata.Meta = json.RawMessage(d.Meta)
			} else {
				// Not JSON after all: keep it, as a string.
				s, _ := json.Marshal(d.Meta)
				doc.Metadata.Meta = s
			}
		}
		line.Reset()
		if err := enc.Encode(&doc); err != nil {
			return fmt.Errorf("export: %s: document %s: %w", path, d.ID, err)
		}
		if _, err := cw.Write(line.Bytes()); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		return nil
	})
	fi.Docs = n
	if err != nil {
		cw.Close()
		return err
	}
	if err := cw.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}
