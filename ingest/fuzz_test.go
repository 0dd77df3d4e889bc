package ingest

// Fuzz targets for every reader, seeded with the real samples in
// ../shared/data (the broken ones included). Beyond "no panic, no endless
// loop, errors name the file", each checks the accounting: what a reader's
// framing counted is what it returned, one record or record error each.
// Each finding is kept in testdata/fuzz/FuzzNAME/, which every go test
// run replays as a regular test.

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
)

// seedMax bounds a fuzz seed: the fuzzer's mutations and minimization
// slow down with the input's size, so a real file is cut to its first
// complete gzip members (or its first bytes) up to about this size.
const seedMax = 24 << 10

// sharedSeeds returns the shared sample files under dir whose names match
// one of the patterns, cut to seedMax (see seedHead), or none when the
// data is absent (fuzzing then runs on the generated seeds alone).
func sharedSeeds(dir string, patterns ...string) [][]byte {
	var out [][]byte
	for _, pat := range patterns {
		m, _ := filepath.Glob(filepath.Join("..", "..", "shared", "data", dir, pat))
		for _, p := range m {
			if b, err := os.ReadFile(p); err == nil {
				out = append(out, seedHead(b))
			}
		}
	}
	return out
}

// seedHead cuts a file to its first whole gzip members within seedMax (at
// least one), or, uncompressed, to its first seedMax bytes.
func seedHead(b []byte) []byte {
	if len(b) <= seedMax {
		return b
	}
	if sniffCompression(b) != compGzip {
		return b[:seedMax]
	}
	end := 0
	br := bytes.NewReader(b)
	for br.Len() > 0 {
		zr, err := gzip.NewReader(br)
		if err != nil {
			break
		}
		zr.Multistream(false)
		if _, err := io.Copy(io.Discard, zr); err != nil {
			break
		}
		next := len(b) - br.Len()
		if next > seedMax && end > 0 {
			break
		}
		end = next
	}
	if end == 0 {
		return b[:seedMax]
	}
	return b[:end]
}

// checkReader reads path with format f and checks the reader's contract
// and its framing against what it returned.
func checkReader(t *testing.T, path string, f Format, opt ReaderOptions, convert bool) {
	t.Helper()
	r, err := Open(path, f, opt)
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) || f == FormatParquet {
			return // a file that is not Parquet, or not this layout, cannot be opened
		}
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	units := int64(0)
	for i := 0; ; i++ {
		if i > 100000 {
			t.Fatal("reader did not end")
		}
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if re, ok := IsRecordError(err); ok {
			if re.File != path {
				t.Fatalf("error without the file: %v", re)
			}
			if !IsIncident(re.Kind) {
				units++
			}
			continue
		}
		if err != nil {
			t.Fatalf("non-record error: %v", err)
		}
		units++
		if convert {
			Convert(rec, "fuzz")
		}
	}
	framed, ferr := r.(framer).framing()
	if ferr != nil {
		t.Fatalf("framing layers disagree: %v", ferr)
	}
	if framed != units {
		t.Fatalf("framing counted %d records, the reader returned %d records and record errors", framed, units)
	}
}

func fuzzWARCReader(f *testing.F, format Format, seeds [][]byte) {
	for _, s := range seeds {
		f.Add(s)
		if len(s) > 64 {
			f.Add(s[:len(s)/3]) // broken: cut inside
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "fuzz.warc")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		checkReader(t, p, format, ReaderOptions{MaxRecordBytes: 1 << 16}, false)
	})
}

// FuzzWARCShared: the WARC reader on mutations of the real WARC samples.
func FuzzWARCShared(f *testing.F) {
	seeds := sharedSeeds("warc", "*.warc.gz", "*.warc")
	seeds = append(seeds, concatWARC(genWARC(2), "1.0"))
	fuzzWARCReader(f, FormatWARC, seeds)
}

// FuzzWET: the same reader on the real WET samples.
func FuzzWET(f *testing.F) {
	seeds := sharedSeeds("wet", "*.wet.gz", "*.txt")
	seeds = append(seeds, []byte("WARC/1.0\r\nWARC-Type: conversion\r\nContent-Length: 5\r\n\r\nhello\r\n\r\n"))
	fuzzWARCReader(f, FormatWET, seeds)
}

// FuzzJSONL: the JSONL reader on mutations of the real JSONL samples.
func FuzzJSONL(f *testing.F) {
	for _, s := range sharedSeeds("jsonl", "*.jsonl", "*.jsonl.gz") {
		f.Add(s)
		f.Add(s[:len(s)/2])
	}
	f.Add([]byte("\ufeff{\"id\":1,\"text\":\"a\"}\n\n{\"text\":2}\n{bad\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "fuzz.jsonl")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		checkReader(t, p, FormatJSONL, ReaderOptions{MaxRecordBytes: 1 << 16}, true)
	})
}

// parquetOf writes docs (JSON objects with id, text, url) as a Parquet
// file and returns its bytes.
func parquetOf(t testing.TB, docs []map[string]any) []byte {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.BinaryTypes.String},
		{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "url", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	var buf bytes.Buffer
	w, err := pqarrow.NewFileWriter(schema, &buf, parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(4)), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for _, d := range docs {
		id, _ := d["id"].(string)
		text, _ := d["text"].(string)
		url, _ := d["url"].(string)
		b.Field(0).(*array.StringBuilder).Append(id)
		b.Field(1).(*array.StringBuilder).Append(text)
		b.Field(2).(*array.StringBuilder).Append(url)
	}
	rec := b.NewRecord()
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzParquet: the Parquet reader on mutations of a Parquet file made of
// the real JSONL samples' documents (no Parquet sample is shared).
func FuzzParquet(f *testing.F) {
	for _, s := range sharedSeeds("jsonl", "*.jsonl") {
		var docs []map[string]any
		for _, line := range bytes.Split(bytes.TrimSpace(s), []byte("\n")) {
			var d map[string]any
			if json.Unmarshal(line, &d) == nil {
				if t, ok := d["text"].(string); ok && len(t) > 2000 {
					d["text"] = t[:2000]
				}
				docs = append(docs, d)
			}
		}
		pq := parquetOf(f, docs)
		f.Add(pq)
		f.Add(pq[:len(pq)-100])
	}
	f.Add(parquetOf(f, []map[string]any{{"id": "a", "text": "Rivers carry water."}}))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "fuzz.parquet")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		checkReader(t, p, FormatParquet, ReaderOptions{MaxRecordBytes: 1 << 16}, false)
	})
}

// FuzzHTTPPayload: Convert on mutations of the HTTP responses of the real
// WARC samples: a document, a skip reason or a RecordError, never a panic.
func FuzzHTTPPayload(f *testing.F) {
	n := 0
	for _, p := range []string{"warc/warcio_example-iana.org-chunked.warc", "warc/cc_whirlwind.warc.gz", "warc/warcio_example.warc.gz", "warc/dolma_sample-0001.warc.gz"} {
		path := filepath.Join("..", "..", "shared", "data", p)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		r, err := Open(path, FormatWARC, ReaderOptions{})
		if err != nil {
			f.Fatal(err)
		}
		for rec, err := range Records(r) {
			if err == nil && rec.Kind == PayloadHTTP && n < 12 {
				f.Add(rec.Body)
				n++
			}
		}
		r.Close()
	}
	f.Add(httpResp(200, "Content-Type: text/html\nTransfer-Encoding: chunked\nContent-Encoding: gzip", []byte("5\r\nhello\r\n0\r\n\r\n")))
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := &Record{File: "fuzz.warc", Key: "k", Kind: PayloadHTTP, Body: body, MaxBytes: 1 << 20, MaxHTML: 256 << 10}
		doc, skip, err := Convert(rec, "fuzz")
		switch {
		case err != nil:
			if _, ok := IsRecordError(err); !ok {
				t.Fatalf("not a RecordError: %v", err)
			}
		case skip == "" && (doc == nil || doc.Text == ""):
			t.Fatalf("no document and no reason")
		}
	})
}
