package export

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

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
// shard: part-NNNNN.jsonl.zst (or .jsonl.gz), a concatenation of
// independently compressed blocks (see jsonl_blocks.go).
type jsonlExporter struct {
	perShard
	opt Options
	enc *blockEncoder
	// copied and encoded count the blocks copied from an earlier export
	// and those compressed (tests check that Reuse copies).
	copied, encoded int64
}

func (e *jsonlExporter) shard(ctx context.Context, in *Input, path string, info shards.ShardInfo, index int) error {
	ext := ".jsonl.zst"
	if e.opt.Compression == "gzip" {
		ext = ".jsonl.gz"
	}
	if e.enc == nil {
		enc, err := newBlockEncoder(e.opt.Compression)
		if err != nil {
			return err
		}
		e.enc = enc
	}
	name := fmt.Sprintf("part-%05d%s", index, ext)
	if p, ofi, ok := e.reuse.unchanged(in, info); ok && e.linkEarlier(name, p, ofi) {
		return nil
	}
	var old *earlierBlocks
	if p, fi, ok := e.reuse.lookup(in, info.Name); ok {
		if e.reuse.removed != nil {
			data, err := readVerified(p, fi)
			if err == nil {
				copied, encoded := e.copied, e.encoded
				err = e.write(name, FileInfo{Role: "documents"}, func(w io.Writer, fi *FileInfo) error {
					return e.derive(ctx, w, data, e.reuse.earlierRows(in, info.Name), info, fi)
				})
				if err == nil || !errors.Is(err, errDerive) {
					return err
				}
				e.copied, e.encoded = copied, encoded
			}
			slog.Warn("export: reuse: not deriving from the earlier file; exporting it from its shard", "file", p, "err", err)
		}
		old = readEarlier(p, fi.SHA256, e.enc)
	}
	return e.write(name, FileInfo{Role: "documents"}, func(w io.Writer, fi *FileInfo) error {
		return e.writeDocs(ctx, w, path, info, fi, old)
	})
}

// jsonlBlocksDone, if set (by tests), is told how many blocks an export
// into out copied and compressed.
var jsonlBlocksDone func(out string, copied, encoded int64)

func (e *jsonlExporter) finish(ctx context.Context, cp *checkpoint) ([]FileInfo, error) {
	if e.reuse != nil {
		slog.Debug("export: jsonl blocks", "copied", e.copied, "compressed", e.encoded)
	}
	jsonlBlocksCopied.Add(e.copied)
	jsonlBlocksEncoded.Add(e.encoded)
	if jsonlBlocksDone != nil {
		jsonlBlocksDone(e.out, e.copied, e.encoded)
	}
	e.close()
	return e.perShard.finish(ctx, cp)
}

// close releases the encoder.
func (e *jsonlExporter) close() {
	e.enc.close()
	e.enc = nil
}

// dolmaDoc is the JSONL line of a document.
func dolmaDoc(d *shards.Document) DolmaDoc {
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
	return doc
}

func (e *jsonlExporter) writeDocs(ctx context.Context, w io.Writer, path string, info shards.ShardInfo, fi *FileInfo, old *earlierBlocks) error {
	var block bytes.Buffer
	blocks := 0
	flush := func() error {
		if b, ok := old.find(block.Bytes()); ok {
			e.copied++
			if _, err := w.Write(b); err != nil {
				return fmt.Errorf("export: %w", err)
			}
		} else {
			b, err := e.enc.encode(block.Bytes())
			if err != nil {
				return err
			}
			e.encoded++
			if _, err := w.Write(b); err != nil {
				return fmt.Errorf("export: %w", err)
			}
		}
		blocks++
		block.Reset()
		return nil
	}
	enc := json.NewEncoder(&block)
	enc.SetEscapeHTML(false)
	n, err := forEachDoc(ctx, path, info, func(d *shards.Document) error {
		doc := dolmaDoc(d)
		if err := enc.Encode(&doc); err != nil {
			return fmt.Errorf("export: %s: document %s: %w", path, d.ID, err)
		}
		if jsonlCutAfter(d.ID, jsonlBlockDocs) || block.Len() >= jsonlBlockCap {
			return flush()
		}
		return nil
	})
	fi.Docs = n
	if err != nil {
		return err
	}
	if block.Len() > 0 || blocks == 0 {
		// The last block; or, for a shard with no documents, one empty
		// block, so that the file is still a valid zstd or gzip file.
		return flush()
	}
	return nil
}
