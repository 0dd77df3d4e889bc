package shards

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ManifestName is the file name of a shard directory's manifest.
const ManifestName = "manifest.json"

// Kinds of shard directory.
const (
	KindDocuments = "documents"
	KindDropped   = "dropped"
	KindTokens    = "tokens"
)

// Manifest describes a shard directory: which shards it holds, with their
// sizes and checksums, the totals, and where the data came from. It is
// written last, atomically, so a directory with a manifest is complete.
type Manifest struct {
	FormatVersion int    `json:"format_version"`
	Kind          string `json:"kind"`
	// Stage is the stage that wrote the directory ("ingest", "filter", ...).
	Stage string `json:"stage"`
	// Fingerprint identifies the inputs and settings that produced the
	// directory, so that a rerun can tell its own finished output from
	// someone else's.
	Fingerprint string      `json:"fingerprint,omitempty"`
	Shards      []ShardInfo `json:"shards"`
	Totals      Totals      `json:"totals"`
	// Sources counts rows (and tokens) per document source.
	Sources map[string]Totals `json:"sources,omitempty"`
	// Inputs records the provenance of every input.
	Inputs []InputInfo `json:"inputs,omitempty"`
	// Tokenizer describes the tokenizer of a token-shard directory.
	Tokenizer *TokenizerInfo `json:"tokenizer,omitempty"`
	// Compression is how a token-shard directory's Arrow buffers are
	// stored: "none" or "zstd" (TokenCompressionNone, TokenCompressionZstd).
	// Token directories written before 2026-12-05 lack it: they are zstd.
	// Readers need not look at it; every Arrow reader reads both.
	Compression string `json:"compression,omitempty"`
}

// Totals sums a set of shards.
type Totals struct {
	Rows      int64 `json:"rows"`
	Bytes     int64 `json:"bytes"`
	DataBytes int64 `json:"data_bytes"`
	Tokens    int64 `json:"tokens,omitempty"`
}

// InputInfo is the provenance of one input file or directory.
type InputInfo struct {
	Path   string `json:"path"`
	Format string `json:"format,omitempty"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256,omitempty"`
	// Records read from the input, Documents written from it, and the
	// records skipped (by a typed reason) or broken.
	Records   int64 `json:"records"`
	Documents int64 `json:"documents"`
	Skipped   int64 `json:"skipped"`
	Errors    int64 `json:"errors"`
}

// TokenizerInfo identifies the tokenizer that produced token shards.
type TokenizerInfo struct {
	Name      string `json:"name"`
	RanksHash string `json:"ranks_hash"`
	VocabSize int    `json:"vocab_size"`
	EOT       uint32 `json:"eot"`
	// BOS, when set, starts every document (absent otherwise, which keeps
	// the fingerprints of outputs made before it existed).
	BOS *uint32 `json:"bos,omitempty"`
}

// SumShards returns the totals of shards.
func SumShards(shards []ShardInfo) Totals {
	var t Totals
	for _, s := range shards {
		t.Rows += s.Rows
		t.Bytes += s.Bytes
		t.DataBytes += s.DataBytes
		t.Tokens += s.Tokens
	}
	return t
}

// WriteManifest writes m into dir atomically.
func WriteManifest(dir string, m *Manifest) error {
	if m.FormatVersion == 0 {
		m.FormatVersion = FormatVersion
	}
	if m.Shards == nil {
		m.Shards = []ShardInfo{}
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	return WriteFileAtomic(filepath.Join(dir, ManifestName), append(data, '\n'))
}

// ReadManifest reads and validates dir's manifest: every shard name must be
// a plain file name inside dir.
func ReadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestName)
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: no manifest.json: not a finished smelt shard directory", dir)
		}
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m.FormatVersion < 1 || m.FormatVersion > FormatVersion {
		return nil, fmt.Errorf("%s: format version %d not supported (this smelt reads 1..%d)", path, m.FormatVersion, FormatVersion)
	}
	for _, s := range m.Shards {
		if err := checkShardName(s.Name); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := m.checkBounds(path); err != nil {
		return nil, err
	}
	return &m, nil
}

func checkShardName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || filepath.IsAbs(name) {
		return fmt.Errorf("shard %q points outside its directory", name)
	}
	return nil
}
