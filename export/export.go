// Package export writes smelt's shards in the formats that other trainers
// and tools read: Megatron-LM's indexed dataset (.bin + .idx, also read by
// GPT-NeoX), nanoGPT's train.bin/val.bin, llm.c's .bin files, Parquet (for
// Hugging Face datasets, DuckDB, Polars) and Dolma-style JSONL.
//
// An export streams its input one shard at a time (memory is bounded by a
// shard), is deterministic (the same inputs and options give the same
// bytes), resumes after kill -9 from a checkpoint saved after every input
// shard, and records its provenance (input shards, tokenizer, manifest
// sha256, and every output file's size and sha256) in export.json, which it
// writes last.
package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/smelt-dev/smelt/shards"
)

// Format is an export format.
type Format string

// The export formats.
const (
	// FormatMegatron is Megatron-LM's (and GPT-NeoX's) indexed dataset:
	// NAME.bin and NAME.idx per input, plus data_path.txt, the
	// --data-path blend string.
	FormatMegatron Format = "megatron"
	// FormatNanoGPT is nanoGPT's train.bin and val.bin: raw uint16 tokens.
	FormatNanoGPT Format = "nanogpt"
	// FormatLLMC is llm.c's train.bin and val.bin: a 256-int32 header and
	// the tokens.
	FormatLLMC Format = "llmc"
	// FormatParquet is Parquet, one file per input shard: documents
	// (from document shards) or token ids (from token shards).
	FormatParquet Format = "parquet"
	// FormatJSONL is Dolma-style JSON lines, zstd- or gzip-compressed, one
	// file per input document shard.
	FormatJSONL Format = "jsonl"
)

// Formats lists the export formats.
var Formats = []Format{FormatMegatron, FormatNanoGPT, FormatLLMC, FormatParquet, FormatJSONL}

// ParseFormat checks a format name.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("export: unknown format %q (want megatron, nanogpt, llmc, parquet or jsonl)", s)
}

// wantsTokens reports whether a format reads token shards.
func (f Format) wantsTokens() bool {
	return f == FormatMegatron || f == FormatNanoGPT || f == FormatLLMC
}

// Defaults of Options.
const (
	// DefaultValFraction is the held-out fraction of nanoGPT and llm.c
	// exports: smelt train's default, so val.bin holds the documents that
	// smelt's own loader holds out.
	DefaultValFraction = 0.01
	// DefaultRowGroupBytes is the uncompressed size of a Parquet row
	// group: small enough for streaming readers (Hugging Face datasets
	// streams row group by row group), large enough for zstd.
	DefaultRowGroupBytes = 16 << 20
	// DefaultSeqLen is the sequence length of a materialised mix.
	DefaultSeqLen = 1024
	// DefaultSeed is smelt train's default seed, so a materialised mix is
	// the stream smelt train would read.
	DefaultSeed = 1337
)

// Options configure an export. The zero value (with a Format) uses the
// defaults.
type Options struct {
	Format Format `json:"format"`
	// ValFraction is the fraction of documents that nanoGPT and llm.c
	// exports put in val.bin, chosen by shards.IsHeldOut on the document
	// id: the same split smelt's loader holds out (0 = DefaultValFraction).
	ValFraction float64 `json:"val_fraction,omitempty"`
	// Compression of JSONL exports: "zstd" (default) or "gzip"; of
	// Parquet exports: "zstd" (default), "snappy" or "none".
	Compression string `json:"compression,omitempty"`
	// RowGroupBytes bounds a Parquet row group's uncompressed data
	// (0 = DefaultRowGroupBytes).
	RowGroupBytes int64 `json:"row_group_bytes,omitempty"`
	// MixTokens, for megatron, also writes the mix of the inputs in the
	// order smelt's loader draws it (weights, seeded shuffles, packing
	// into SeqLen+1 token sequences, the held-out split left out): this
	// many tokens, rounded down to whole sequences, as the dataset "mix",
	// one sequence per Megatron document.
	MixTokens int64 `json:"mix_tokens,omitempty"`
	// SeqLen and Seed are the loader's for MixTokens (0 = DefaultSeqLen,
	// DefaultSeed).
	SeqLen int    `json:"seq_len,omitempty"`
	Seed   uint64 `json:"seed,omitempty"`
	// Progress, if set, is called after every input shard with the
	// uncompressed input bytes done and in total.
	Progress func(done, total int64) `json:"-"`
	// Reuse, if set, lets the export copy compressed blocks of an earlier
	// export instead of writing them again (Parquet and JSONL); the
	// output is the same bytes either way.
	Reuse *Reuse `json:"-"`
}

// Check reports whether the options are valid, with their defaults.
func (o Options) Check() error { return o.defaults() }

func (o *Options) defaults() error {
	if _, err := ParseFormat(string(o.Format)); err != nil {
		return err
	}
	if o.ValFraction == 0 {
		o.ValFraction = DefaultValFraction
	}
	if !(o.ValFraction > 0 && o.ValFraction < 1) {
		return fmt.Errorf("export: val fraction %v must be in (0, 1)", o.ValFraction)
	}
	switch o.Format {
	case FormatJSONL:
		switch o.Compression {
		case "":
			o.Compression = "zstd"
		case "zstd", "gzip":
		default:
			return fmt.Errorf("export: jsonl compression %q (want zstd or gzip)", o.Compression)
		}
	case FormatParquet:
		switch o.Compression {
		case "":
			o.Compression = "zstd"
		case "zstd", "snappy", "none":
		default:
			return fmt.Errorf("export: parquet compression %q (want zstd, snappy or none)", o.Compression)
		}
	default:
		if o.Compression != "" {
			return fmt.Errorf("export: compression applies to jsonl and parquet, not %s", o.Format)
		}
	}
	if o.RowGroupBytes == 0 {
		o.RowGroupBytes = DefaultRowGroupBytes
	}
	if o.RowGroupBytes < 0 {
		return fmt.Errorf("export: row group size %d must be positive", o.RowGroupBytes)
	}
	if o.MixTokens < 0 {
		return fmt.Errorf("export: mix tokens %d must not be negative", o.MixTokens)
	}
	if o.MixTokens > 0 && o.Format != FormatMegatron {
		return fmt.Errorf("export: a materialised mix (mix tokens) is written for megatron only, not %s", o.Format)
	}
	if o.SeqLen == 0 {
		o.SeqLen = DefaultSeqLen
	}
	if o.Seed == 0 {
		o.Seed = DefaultSeed
	}
	if o.SeqLen < 0 {
		return fmt.Errorf("export: seq len %d must be positive", o.SeqLen)
	}
	return nil
}

// Input is one shard directory to export.
type Input struct {
	// Name names the input's Megatron dataset (NAME.bin, NAME.idx).
	Name string
	// Dir is the finished shard directory.
	Dir string
	// Weight is the input's weight in the Megatron blend; 0 means in
	// proportion to its tokens.
	Weight float64
	// Manifest is Dir's manifest and ManifestSHA256 its file's sha256.
	Manifest       *shards.Manifest
	ManifestSHA256 string
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// OpenInput reads a shard directory's manifest. An empty name is the
// directory's base name.
func OpenInput(name, dir string, weight float64) (*Input, error) {
	m, err := shards.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	sum, _, err := shards.FileSHA256(filepath.Join(dir, shards.ManifestName))
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = filepath.Base(filepath.Clean(dir))
	}
	name = strings.Trim(unsafeName.ReplaceAllString(name, "_"), "._")
	if name == "" {
		name = "data"
	}
	return &Input{Name: name, Dir: filepath.Clean(dir), Weight: weight, Manifest: m, ManifestSHA256: sum}, nil
}

// ResolveInputs opens command-line inputs: shard directories, or mix files
// (.yaml or .yml, as smelt train reads), whose sources become inputs named
// after them with their weights.
func ResolveInputs(args []string) ([]*Input, error) {
	var out []*Input
	for _, a := range args {
		fi, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("export: input %w", err)
		}
		if !fi.IsDir() && (strings.HasSuffix(a, ".yaml") || strings.HasSuffix(a, ".yml")) {
			mix, err := shards.LoadMix(a)
			if err != nil {
				return nil, err
			}
			for _, s := range mix.Sources {
				in, err := OpenInput(s.Name, s.Dir, s.Weight)
				if err != nil {
					return nil, err
				}
				out = append(out, in)
			}
			continue
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("export: input %s is neither a shard directory nor a mix file (.yaml)", a)
		}
		in, err := OpenInput("", a, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, nil
}

// Provenance is export.json: what was exported, from what, into which files.
type Provenance struct {
	Format      Format `json:"format"`
	Fingerprint string `json:"fingerprint"`
	// Options are the resolved options.
	Options Options `json:"options"`
	// Tokenizer is the token shards' tokenizer (token formats).
	Tokenizer *shards.TokenizerInfo `json:"tokenizer,omitempty"`
	// TokenDType is how token ids are stored: uint16, uint32 or int32.
	TokenDType string      `json:"token_dtype,omitempty"`
	Inputs     []InputInfo `json:"inputs"`
	Files      []FileInfo  `json:"files"`
	// DataPath is Megatron's --data-path blend: weight and path prefix
	// (relative to the export directory) per dataset.
	DataPath string `json:"megatron_data_path,omitempty"`
	// Docs and Tokens are what the exported data holds (a materialised
	// mix, drawn from it, is not counted again).
	Docs   int64 `json:"docs"`
	Tokens int64 `json:"tokens,omitempty"`
	// Writer names the code that wrote the files (writerID): a later
	// export reuses a file whole only from an export with the same.
	Writer string `json:"writer,omitempty"`
}

// InputInfo is the provenance of one input directory.
type InputInfo struct {
	Name           string     `json:"name"`
	Dir            string     `json:"dir"`
	Weight         float64    `json:"weight,omitempty"`
	Kind           string     `json:"kind"`
	Stage          string     `json:"stage"`
	ManifestSHA256 string     `json:"manifest_sha256"`
	Shards         []ShardRef `json:"shards"`
}

// ShardRef names an input shard.
type ShardRef struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Rows   int64  `json:"rows"`
	Tokens int64  `json:"tokens,omitempty"`
}

// FileInfo is one output file.
type FileInfo struct {
	Name string `json:"name"`
	// Role says what the file is: train and val (nanogpt, llmc), data,
	// index, mix and blend (megatron), documents or tokens (parquet, jsonl).
	Role  string `json:"role"`
	Bytes int64  `json:"bytes"`
	// SHA256 is the file's sha256. For llm.c files, whose header (it
	// holds the token count) is written last, TokensSHA256 is the sha256
	// of what follows the 1,024-byte header instead (tail -c +1025 FILE |
	// sha256sum): hashing the whole file would mean reading it again, 16 %
	// of an llmc export.
	SHA256       string `json:"sha256,omitempty"`
	TokensSHA256 string `json:"tokens_sha256,omitempty"`
	Docs         int64  `json:"docs"`
	Tokens       int64  `json:"tokens,omitempty"`
}

// exporter is one format's writer. The runner calls resume once, shard for
// every input shard not yet exported (then save), and finish.
type exporter interface {
	resume(cp *checkpoint) error
	shard(ctx context.Context, in *Input, path string, info shards.ShardInfo, index int) error
	// save syncs the outputs and records them in cp.
	save(cp *checkpoint) error
	// finish publishes the outputs and returns them, in order.
	finish(ctx context.Context, cp *checkpoint) ([]FileInfo, error)
	// close releases open files after an error.
	close()
}

// Run exports inputs into the directory out. Running it again after a
// crash resumes; running it on a finished export with the same inputs and
// options returns the recorded provenance; an output directory holding
// anything else is refused.
func Run(ctx context.Context, inputs []*Input, out string, opt Options) (*Provenance, error) {
	if err := opt.defaults(); err != nil {
		return nil, err
	}
	if len(inputs) == 0 {
		return nil, errors.New("export: no inputs")
	}
	prov := &Provenance{Format: opt.Format, Options: opt, Writer: writerID()}
	names := map[string]bool{}
	var total int64
	for _, in := range inputs {
		m := in.Manifest
		switch {
		case opt.Format.wantsTokens() && m.Kind != shards.KindTokens:
			return nil, fmt.Errorf("export: %s holds %s; %s exports token shards (run smelt tokenize first)", in.Dir, kindName(m.Kind), opt.Format)
		case opt.Format == FormatJSONL && m.Kind != shards.KindDocuments:
			return nil, fmt.Errorf("export: %s holds %s; jsonl exports document shards", in.Dir, kindName(m.Kind))
		case opt.Format == FormatParquet && m.Kind != shards.KindDocuments && m.Kind != shards.KindTokens:
			return nil, fmt.Errorf("export: %s holds %s; parquet exports document or token shards", in.Dir, kindName(m.Kind))
		case m.Kind != inputs[0].Manifest.Kind:
			return nil, fmt.Errorf("export: %s holds %s but %s holds %s: export one kind at a time", in.Dir, kindName(m.Kind), inputs[0].Dir, kindName(inputs[0].Manifest.Kind))
		}
		if m.Kind == shards.KindTokens {
			if m.Tokenizer == nil {
				return nil, fmt.Errorf("export: %s: token manifest without a tokenizer", in.Dir)
			}
			if err := checkTokenizer(in.Dir, m.Tokenizer); err != nil {
				return nil, err
			}
			if prov.Tokenizer == nil {
				tok := *m.Tokenizer
				prov.Tokenizer = &tok
			} else if *m.Tokenizer != *prov.Tokenizer {
				return nil, fmt.Errorf("export: %s was tokenized with %s (vocabulary %d, ranks %s), %s with %s (vocabulary %d, ranks %s): one export holds one tokenizer's ids",
					in.Dir, m.Tokenizer.Name, m.Tokenizer.VocabSize, m.Tokenizer.RanksHash, inputs[0].Dir, prov.Tokenizer.Name, prov.Tokenizer.VocabSize, prov.Tokenizer.RanksHash)
			}
		}
		if opt.Format == FormatMegatron {
			if names[in.Name] || in.Name == mixName {
				return nil, fmt.Errorf("export: two inputs would both write the Megatron dataset %q (%s): name them apart with a mix file", in.Name, in.Dir)
			}
			names[in.Name] = true
		}
		info := InputInfo{Name: in.Name, Dir: in.Dir, Weight: in.Weight, Kind: m.Kind, Stage: m.Stage, ManifestSHA256: in.ManifestSHA256}
		for _, s := range m.Shards {
			info.Shards = append(info.Shards, ShardRef{Name: s.Name, SHA256: s.SHA256, Rows: s.Rows, Tokens: s.Tokens})
			total += s.DataBytes
		}
		prov.Inputs = append(prov.Inputs, info)
	}
	if prov.Tokenizer != nil {
		dt, err := tokenDType(opt.Format, prov.Tokenizer)
		if err != nil {
			return nil, err
		}
		prov.TokenDType = dt
	}
	fp, err := shards.Fingerprint("export", opt, fingerprintInputs(prov.Inputs)...)
	if err != nil {
		return nil, err
	}
	prov.Fingerprint = fp

	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("export: create output: %w", err)
	}
	unlock, err := shards.LockOutput(out) // one writer per output directory
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	defer unlock()
	if done, err := finished(out, fp); err != nil {
		return nil, err
	} else if done != nil {
		// A run killed after writing export.json may have left its
		// scratch files and checkpoint behind.
		if err := removePartials(out, nil); err != nil {
			return nil, err
		}
		if err := os.Remove(filepath.Join(out, CheckpointName)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("export: %w", err)
		}
		return done, nil
	}
	cp, err := loadCheckpoint(out)
	if err != nil {
		return nil, err
	}
	if cp != nil && cp.Fingerprint != fp {
		return nil, fmt.Errorf("export: %s holds an unfinished export of other inputs or options; remove it or choose another --out", out)
	}
	if cp == nil {
		if err := checkEmpty(out); err != nil {
			return nil, err
		}
		cp = &checkpoint{Fingerprint: fp}
	} else if err := removeStrays(out, cp); err != nil {
		return nil, err
	}
	if err := removePartials(out, cp.Partials); err != nil {
		return nil, err
	}
	reuse, err := openReuse(opt.Reuse, opt, prov, inputs)
	if err != nil {
		return nil, err
	}
	ex, err := newExporter(out, opt, inputs, prov, reuse)
	if err != nil {
		return nil, err
	}
	if err := ex.resume(cp); err != nil {
		ex.close()
		return nil, err
	}
	if err := runShards(ctx, ex, inputs, cp, out, total, opt.Progress); err != nil {
		ex.close()
		return nil, err
	}
	files, err := ex.finish(ctx, cp)
	if err != nil {
		ex.close()
		return nil, err
	}
	for i := range files {
		if files[i].SHA256 == "" && files[i].TokensSHA256 == "" {
			sum, n, err := shards.FileSHA256(filepath.Join(out, files[i].Name))
			if err != nil {
				return nil, fmt.Errorf("export: %w", err)
			}
			files[i].SHA256, files[i].Bytes = sum, n
		}
		if r := files[i].Role; r != "index" && r != "blend" && r != "mix" {
			prov.Docs += files[i].Docs
			prov.Tokens += files[i].Tokens
		}
	}
	prov.Files = files
	if bl, ok := ex.(interface{ dataPath() string }); ok {
		prov.DataPath = bl.dataPath()
	}
	data, err := json.MarshalIndent(prov, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("export: encode %s: %w", SidecarName, err)
	}
	if err := shards.WriteFileAtomic(filepath.Join(out, SidecarName), append(data, '\n')); err != nil {
		return nil, err
	}
	if c, ok := ex.(interface{ cleanup() error }); ok {
		if err := c.cleanup(); err != nil {
			return nil, err
		}
	}
	if err := os.Remove(filepath.Join(out, CheckpointName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("export: %w", err)
	}
	return prov, nil
}

// kindName names a manifest kind's shards in messages.
func kindName(kind string) string {
	switch kind {
	case shards.KindDocuments:
		return "document shards"
	case shards.KindTokens:
		return "token shards"
	case shards.KindDropped:
		return "dropped documents"
	}
	return kind + " shards"
}

// runShards exports every input shard after the checkpoint's, saving a
// checkpoint after each.
func runShards(ctx context.Context, ex exporter, inputs []*Input, cp *checkpoint, out string, total int64, progress func(done, total int64)) error {
	k := 0
	var done int64
	for _, in := range inputs {
		for _, info := range in.Manifest.Shards {
			idx := k
			k++
			done += info.DataBytes
			if idx < cp.Consumed {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			path := filepath.Join(in.Dir, info.Name)
			if err := ex.shard(ctx, in, path, info, idx); err != nil {
				return err
			}
			if err := ex.save(cp); err != nil {
				return err
			}
			if testHookSynced != nil {
				testHookSynced(idx + 1)
			}
			cp.Consumed = idx + 1
			if err := saveCheckpoint(out, cp); err != nil {
				return err
			}
			if progress != nil {
				progress(done, total)
			}
		}
	}
	return nil
}

// testHookSynced, when set (by tests), runs after the outputs of n input
// shards are synced and before the checkpoint that records them: the
// moment a kill leaves the most unrecorded bytes on disk.
var testHookSynced func(n int)

func fingerprintInputs(ins []InputInfo) []any {
	out := make([]any, len(ins))
	for i, in := range ins {
		// The manifest's sha256 covers every shard's; the directory's path
		// does not matter.
		out[i] = []any{in.Name, in.Weight, in.ManifestSHA256}
	}
	return out
}

// finished returns the provenance of a finished export in out with the
// same fingerprint, an error for one with another, and nil, nil for none.
func finished(out, fp string) (*Provenance, error) {
	data, err := os.ReadFile(filepath.Join(out, SidecarName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p Provenance
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("export: %s: %w", filepath.Join(out, SidecarName), err)
	}
	if p.Fingerprint != fp {
		return nil, fmt.Errorf("export: %s already holds an export of other inputs or options (see its %s); remove it or choose another --out", out, SidecarName)
	}
	return &p, nil
}

// checkEmpty refuses an output directory that holds files an export did
// not leave there.
func checkEmpty(out string) error {
	ents, err := os.ReadDir(out)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	for _, e := range ents {
		n := e.Name()
		if n == shards.OutputLockName || strings.HasPrefix(n, ".") && (strings.HasSuffix(n, ".partial") || strings.Contains(n, ".tmp-")) {
			continue
		}
		return fmt.Errorf("export: output directory %s is not empty (it holds %s): choose a new or empty directory", out, n)
	}
	return nil
}

func newExporter(out string, opt Options, inputs []*Input, prov *Provenance, reuse *reuseSet) (exporter, error) {
	switch opt.Format {
	case FormatMegatron, FormatNanoGPT, FormatLLMC:
		return newBinExporter(out, opt, inputs, prov)
	case FormatParquet:
		return &parquetExporter{perShard: perShard{out: out, reuse: reuse}, opt: opt, tok: prov.Tokenizer}, nil
	case FormatJSONL:
		return &jsonlExporter{perShard: perShard{out: out, reuse: reuse}, opt: opt}, nil
	}
	return nil, fmt.Errorf("export: unknown format %q", opt.Format)
}
