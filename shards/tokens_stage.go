package shards

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
)

// Encoder turns text into token ids. It is the part of a tokenizer that the
// tokenize stage needs; *tokenize.Tokenizer satisfies it (shards does not
// import tokenize, which would make a cycle). It must be safe for
// concurrent use.
type Encoder interface {
	// Name identifies the tokenizer (for example "gpt2").
	Name() string
	// VocabSize is the number of token ids, specials included.
	VocabSize() int
	// EOT is the end-of-text id, and whether the vocabulary has one.
	EOT() (uint32, bool)
	// RanksHash is a stable hash of the ranks and specials.
	RanksHash() string
	// AppendEncodeOrdinary appends text's ids to dst, treating special
	// tokens as ordinary text.
	AppendEncodeOrdinary(dst []uint32, text string) []uint32
}

// TokenizeConfig describes one run of the tokenize stage.
type TokenizeConfig struct {
	// Inputs are finished document-shard directories, read in order.
	Inputs []string
	// Out receives the token shards and manifest.json.
	Out string
	// Encoder tokenizes; its end-of-text id ends every document.
	Encoder Encoder
	// Source, if set, replaces every document's source name.
	Source string
	// OnlySource, if set, tokenizes only the documents whose source is
	// OnlySource (before Source renames them): the others are skipped, as
	// if the inputs did not hold them, so they count in neither the stats,
	// the manifest's Sources nor its Inputs' records. It lets one task per
	// source read an output shared by several sources (a dedup across
	// sources). Progress still counts them, since they are read.
	OnlySource string
	// Workers encode in parallel (0 = all cores); output does not depend on it.
	Workers int
	// TargetBytes is the uncompressed shard size (0 = DefaultTargetBytes).
	TargetBytes int64
	// Compression of the token shards' buffers: TokenCompressionNone
	// (the default when empty) or TokenCompressionZstd.
	Compression string
	// Progress, if set, is called in input order with documents and bytes
	// consumed so far out of the totals.
	Progress func(docs, bytes, totalDocs, totalBytes int64)
	// TextUnused says the Encoder does not read the text it is given (a
	// takedown's replay of the tokens already in the shards): where the
	// fast reader reads a shard, its text is not decompressed and the
	// Encoder gets as many zero bytes as each text has
	// (OpenDocShardLengths). The output is the same for such an Encoder.
	TextUnused bool
}

// Drop reasons of the tokenize stage.
const (
	// DropEmpty is a document with no text: it would be a lone end-of-text token.
	DropEmpty = "tokenize/empty"
)

// tokBufs recycles the token buffers of documents already written: the
// writer copies tokens into its column buffers, so a buffer can go back as
// soon as Write returns.
var tokBufs sync.Pool

// tokenizePosition is the stage-specific part of a tokenize checkpoint.
type tokenizePosition struct {
	Sources map[string]Totals `json:"sources"`
	Inputs  []InputInfo       `json:"inputs"`
	// SkippedBytes are the bytes of the documents OnlySource skipped, for
	// progress.
	SkippedBytes int64 `json:"skipped_bytes,omitempty"`
}

// Tokenize reads the documents of cfg.Inputs, encodes them on workers,
// appends the end-of-text id to each and writes size-bounded token shards
// with a manifest of kind "tokens" into cfg.Out. It checkpoints at every
// shard cut: a run killed at any point and started again with the same
// configuration ends with the same files, byte for byte. A finished output
// with the same fingerprint is reused.
//
// The manifest's Sources count, per source name, documents (Rows), tokens
// including the end-of-text ids (Tokens) and the UTF-8 text bytes encoded
// (DataBytes), so DataBytes/Tokens is the source's bytes per token.
func Tokenize(ctx context.Context, cfg TokenizeConfig) (*Stats, error) {
	if cfg.Encoder == nil {
		return nil, errors.New("tokenize: no encoder")
	}
	if err := CheckTargetBytes(cfg.TargetBytes); err != nil {
		return nil, fmt.Errorf("tokenize: %w", err)
	}
	comp, err := CheckTokenCompression(cfg.Compression)
	if err != nil {
		return nil, fmt.Errorf("tokenize: %w", err)
	}
	eot, ok := cfg.Encoder.EOT()
	if !ok {
		return nil, fmt.Errorf("tokenize: tokenizer %s has no end-of-text token to end documents with", cfg.Encoder.Name())
	}
	tok := TokenizerInfo{Name: cfg.Encoder.Name(), RanksHash: cfg.Encoder.RanksHash(), VocabSize: cfg.Encoder.VocabSize(), EOT: eot}
	if b, ok := cfg.Encoder.(interface{ BOS() (uint32, bool) }); ok {
		if id, ok := b.BOS(); ok {
			tok.BOS = &id
		}
	}
	if tok.VocabSize <= 0 || uint64(eot) >= uint64(tok.VocabSize) {
		return nil, fmt.Errorf("tokenize: tokenizer %s: end-of-text id %d outside its vocabulary of %d", tok.Name, eot, tok.VocabSize)
	}
	in, err := OpenDocDirs(cfg.Inputs...)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	// Documents live only until their tokens are written: their strings
	// may share the decoded batch, which is reused once every document of
	// it has been emitted (docfast.go). emit keeps no string of a document
	// (the source and language it keeps are copies).
	in.recycle()
	in.noText = cfg.TextUnused
	ids := in.Identity()
	fp, err := Fingerprint("tokenize", struct {
		Tokenizer TokenizerInfo `json:"tokenizer"`
		Source    string        `json:"source"`
		Target    int64         `json:"target"`
		// Empty (and so absent) unless set, which keeps the fingerprints
		// of outputs made before the setting existed.
		OnlySource string `json:"only_source,omitempty"`
		// Absent for zstd, which every output made before the setting
		// existed used: those keep their fingerprints.
		Compression string `json:"compression,omitempty"`
	}{tok, cfg.Source, cfg.TargetBytes, cfg.OnlySource, fpCompression(comp)}, ids...)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, fmt.Errorf("create output: %w", err)
	}
	unlock, err := LockOutput(cfg.Out)
	if err != nil {
		return nil, fmt.Errorf("tokenize: %w", err)
	}
	defer unlock()
	if m, err := ReadManifest(cfg.Out); err == nil {
		if m.Fingerprint == fp {
			slog.Info("output already complete", "stage", "tokenize", "out", cfg.Out)
			return ReadStats(cfg.Out)
		}
		return nil, fmt.Errorf("%s holds the finished output of a different run (other inputs, tokenizer or settings): choose a new output directory or remove it", cfg.Out)
	}

	st := NewStats("tokenize")
	st.Declare([]string{DropEmpty}, nil)
	var consumed int64
	var published []ShardInfo
	pos := tokenizePosition{Sources: map[string]Totals{}}
	for i, m := range in.Manifests() {
		pos.Inputs = append(pos.Inputs, InputInfo{Path: cfg.Inputs[i], Format: m.Kind, Bytes: m.Totals.Bytes})
	}
	cp, err := LoadCheckpoint(cfg.Out)
	if err != nil {
		return nil, err
	}
	if cp != nil && cp.Fingerprint != fp {
		return nil, fmt.Errorf("%s holds an unfinished run with other inputs, tokenizer or settings: choose a new output directory or remove it", cfg.Out)
	}
	if cp != nil {
		if err := json.Unmarshal(cp.Position, &pos); err != nil {
			return nil, fmt.Errorf("%s: checkpoint position: %w", cfg.Out, err)
		}
		consumed, published, st = cp.Consumed, cp.Outputs["tokens"], cp.Stats
		slog.Info("resuming", "stage", "tokenize", "out", cfg.Out, "documents_done", consumed)
	}
	bytesDone := st.In.Bytes + pos.SkippedBytes
	if err := PruneShards(cfg.Out, "part", published); err != nil {
		return nil, err
	}
	if err := in.Skip(consumed); err != nil {
		return nil, err
	}
	w, err := NewTokenWriter(cfg.Out, TokenWriterOptions{Tokenizer: tok, TargetBytes: cfg.TargetBytes, FirstIndex: len(published), Manual: true, Compression: comp})
	if err != nil {
		return nil, err
	}
	defer w.Abort()

	// Which input each document comes from, for per-input provenance.
	inputRows := make([]int64, len(in.Manifests()))
	for i, m := range in.Manifests() {
		inputRows[i] = m.Totals.Rows
	}
	inputOf := func(n int64) int {
		for i, r := range inputRows {
			if n < r {
				return i
			}
			n -= r
		}
		return len(inputRows) - 1
	}

	totalDocs, totalBytes := in.TotalRows(), in.TotalDataBytes()
	checkpoint := func() error {
		if err := w.Cut(); err != nil {
			return err
		}
		posJSON, err := json.Marshal(pos)
		if err != nil {
			return err
		}
		return SaveCheckpoint(cfg.Out, &Checkpoint{
			Fingerprint: fp,
			Consumed:    consumed,
			Position:    posJSON,
			Outputs:     map[string][]ShardInfo{"tokens": append(append([]ShardInfo(nil), published...), w.Shards()...)},
			Stats:       st,
		})
	}
	type result struct {
		doc  *Document
		toks []uint32
		buf  *[]uint32 // returned to tokBufs once written
		skip bool      // another source's, under OnlySource
	}
	next := func() (*Document, bool, error) {
		d, err := in.Next()
		if errors.Is(err, io.EOF) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		return d, true, nil
	}
	encode := func(d *Document) result {
		if cfg.OnlySource != "" && d.Source != cfg.OnlySource {
			return result{doc: d, skip: true}
		}
		if d.Text == "" {
			return result{doc: d}
		}
		buf, _ := tokBufs.Get().(*[]uint32)
		if buf == nil {
			buf = new([]uint32)
		}
		toks := (*buf)[:0]
		if tok.BOS != nil {
			toks = append(toks, *tok.BOS)
		}
		toks = cfg.Encoder.AppendEncodeOrdinary(toks, d.Text)
		*buf = append(toks, eot)
		return result{doc: d, toks: *buf, buf: buf}
	}
	tokPerDoc := st.Metric("tokenize/tokens_per_doc", "tokens")
	bytesPerTok := st.Metric("tokenize/bytes_per_token", "bytes")
	emit := func(r result) error {
		d := r.doc
		defer in.Done(d)
		n := DocBytes(d)
		bytesDone += n
		inp := inputOf(consumed)
		consumed++
		if r.skip {
			pos.SkippedBytes += n
			if cfg.Progress != nil {
				cfg.Progress(consumed, bytesDone, totalDocs, totalBytes)
			}
			return nil
		}
		st.In.Add(n)
		pos.Inputs[inp].Records++
		if cfg.Source != "" {
			d.Source = cfg.Source
		}
		if r.toks == nil {
			st.Drop(DropEmpty, n)
		} else {
			if err := w.Write(d.ID, d.Source, r.toks); err != nil {
				return fmt.Errorf("tokenize: %w", err)
			}
			if cap(*r.buf) <= 1<<20 {
				tokBufs.Put(r.buf)
			}
			st.Keep(d)
			pos.Inputs[inp].Documents++
			t := pos.Sources[d.Source]
			t.Rows++
			t.Tokens += int64(len(r.toks))
			t.DataBytes += int64(len(d.Text))
			pos.Sources[d.Source] = t
			tokPerDoc.Add(float64(len(r.toks)))
			if len(r.toks) > 1 {
				bytesPerTok.Add(float64(len(d.Text)) / float64(len(r.toks)-1))
			}
		}
		if cfg.Progress != nil {
			cfg.Progress(consumed, bytesDone, totalDocs, totalBytes)
		}
		if w.Full() {
			return checkpoint()
		}
		return nil
	}
	if err := OrderedMap(ctx, cfg.Workers, next, encode, emit); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if err := st.Balanced(); err != nil {
		return nil, err
	}
	all := append(published, w.Shards()...)
	if err := WriteStats(cfg.Out, st); err != nil {
		return nil, err
	}
	if err := WriteManifest(cfg.Out, &Manifest{
		Kind: KindTokens, Stage: "tokenize", Fingerprint: fp,
		Shards: all, Totals: SumShards(all), Sources: pos.Sources, Inputs: pos.Inputs, Tokenizer: &tok, Compression: comp,
	}); err != nil {
		return nil, err
	}
	return st, RemoveCheckpoint(cfg.Out)
}

// fpCompression is a token compression as a fingerprint records it: zstd,
// the only kind before the setting existed, as nothing.
func fpCompression(c string) string {
	if c == TokenCompressionZstd {
		return ""
	}
	return c
}
