// Package ingest turns raw crawl inputs into shards.Documents.
//
// The readers in this package turn ONE input file into a stream of Records
// (Open, RecordReader); Convert turns ONE Record into a Document (HTTP
// decoding, charset detection and transcoding, HTML-to-text extraction with
// go-trafilatura, language identification). The runner in run.go orders the
// work across files and workers and writes the document shards.
//
// Readers stream: memory stays bounded by ReaderOptions.MaxRecordBytes
// whatever the size of the input. Broken input yields a *RecordError naming
// the file and offset; after a RecordError, Next continues with the next
// complete record that can be found.
package ingest
