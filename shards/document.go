// Package shards owns smelt's on-disk formats: the Document every stage
// passes along, the Arrow IPC document shards that store documents, and the
// manifests that describe a shard directory.
//
// Every stage reads and writes documents through this package, so the schema
// lives in one place.
package shards

import "io"

// Document is one text document as it flows through the pipeline.
//
// The zero value is an empty document; every field is optional except ID,
// which stages use for deterministic ordering, seeding and dedup survivors.
type Document struct {
	// ID is stable: it is derived from the source and the record's identity
	// (for example the WARC-Record-ID), never from run order.
	ID string
	// Source names the dataset the document came from (for example "cc").
	Source string
	// URL is the page's address when known.
	URL string
	// Date is the capture date as given by the input, RFC 3339 when it parses.
	Date string
	// Lang is the detected language (ISO 639-1 where one exists) and
	// LangScore the detector's confidence in [0, 1].
	Lang      string
	LangScore float64
	// Quality is the quality classifier's score in [0, 1]; HasQuality says
	// whether a classifier scored the document at all.
	Quality    float64
	HasQuality bool
	// Text is the document's UTF-8 text.
	Text string
	// Meta is a JSON object (as text) holding everything else; "" means none.
	Meta string

	// Drop is set on documents in a dropped side output: why the document
	// was dropped. Nil for kept documents.
	Drop *Drop
}

// Drop records why a stage dropped a document.
type Drop struct {
	// Reason is a typed reason such as "gopher/too_few_words" or "dedup:minhash".
	Reason string
	// Value is the measured value that tripped the rule, formatted as text
	// (for example "23" words, or "0.41" duplicate-line fraction).
	Value string
	// DupOf is the id of the kept document this one duplicates (dedup only).
	DupOf string
}

// Reader is a stream of documents, like tar.Reader: Next returns io.EOF after
// the last document.
type Reader interface {
	Next() (*Document, error)
}

// Writer accepts documents; Close flushes and finalises the output.
type Writer interface {
	Write(*Document) error
	io.Closer
}
