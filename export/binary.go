package export

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/smelt-dev/smelt/shards"
	"gopkg.in/yaml.v3"
)

// Megatron's indexed dataset (megatron/core/datasets/indexed_dataset.py),
// as this package writes it. NAME.bin holds every document's token ids
// back to back. NAME.idx is little-endian:
//
//	magic           9 bytes  "MMIDIDX\x00\x00"
//	version         uint64   1
//	dtype code      uint8    8 (uint16) or 4 (int32)
//	sequence count  uint64   N (one sequence per document)
//	document count  uint64   N+1 (entries of the document index)
//	sizes           int32[N]   tokens of each sequence
//	pointers        int64[N]   byte offset of each sequence in NAME.bin
//	document index  int64[N+1] 0, 1, ..., N: where each document starts
const (
	megatronMagic      = "MMIDIDX\x00\x00"
	megatronVersion    = 1
	megatronDTypeU16   = 8
	megatronDTypeInt32 = 4
)

// llm.c's token files (dev/data/data_common.py in llm.c): a header of 256
// little-endian int32 (magic, version, token count, then zeros) and the
// tokens. Version 1 (magic 20240520) holds uint16 ids, what llm.c's GPT-2
// trainer reads; for vocabularies past 65,536 ids smelt writes the layout
// llm.c uses for its Llama 3 data, magic 20240801, version 7, uint32 ids.
const (
	llmcHeaderInts = 256
	llmcMagic      = 20240520
	llmcVersion    = 1
	llmcMagic32    = 20240801
	llmcVersion32  = 7
)

// mixName is the Megatron dataset that holds a materialised mix.
const mixName = "mix"

// DataPathFile is the Megatron blend string a megatron export writes:
// weight and dataset path prefix, relative to the export directory.
const DataPathFile = "data_path.txt"

// tokenDType is how a format stores the ids of a tokenizer, or a clear
// error when they do not fit it.
func tokenDType(f Format, tok *shards.TokenizerInfo) (string, error) {
	v := tok.VocabSize
	fits16 := v <= 1<<16
	switch f {
	case FormatNanoGPT:
		if !fits16 {
			return "", fmt.Errorf("export: nanogpt: tokenizer %s has a vocabulary of %d ids, but nanoGPT's train.bin holds uint16 ids (at most 65,536): export megatron (int32) or llmc (uint32) instead, or tokenize with a vocabulary of at most 65,536", tok.Name, v)
		}
		return "uint16", nil
	case FormatMegatron:
		if fits16 {
			return "uint16", nil
		}
		if v > math.MaxInt32 {
			return "", fmt.Errorf("export: megatron: tokenizer %s has a vocabulary of %d ids, more than Megatron's int32 ids hold", tok.Name, v)
		}
		return "int32", nil
	case FormatLLMC:
		if fits16 {
			return "uint16", nil
		}
		return "uint32", nil
	case FormatParquet:
		if fits16 {
			return "uint16", nil
		}
		return "uint32", nil
	}
	return "", nil
}

// binExporter writes the raw token formats: megatron, nanogpt and llmc.
type binExporter struct {
	out    string
	opt    Options
	inputs []*Input
	tok    *shards.TokenizerInfo
	wide   bool // 4 bytes a token
	header int64
	names  []string // partial files, in order
	parts  map[string]*partial
	// bins and sizes of each input (megatron), by input name.
	scratch []byte
	sizeBuf []byte
	fileBuf []byte // the shard being read
	// splits is how the loader splits each input at ValFraction (nanogpt,
	// llmc), by input name; ranges is scratch.
	splits map[string]shards.Split
	ranges [][2]int
	// weighted (nanogpt, llmc of a mix file's sources): train.bin is the
	// mix drawn by its weights, as smelt's loader draws it.
	weighted bool
}

func newBinExporter(out string, opt Options, inputs []*Input, prov *Provenance) (*binExporter, error) {
	e := &binExporter{out: out, opt: opt, inputs: inputs, tok: prov.Tokenizer, parts: map[string]*partial{},
		wide: prov.TokenDType != "uint16"}
	switch opt.Format {
	case FormatMegatron:
		for _, in := range inputs {
			e.names = append(e.names, in.Name+".bin", in.Name+".sizes")
		}
		if opt.MixTokens > 0 {
			e.names = append(e.names, mixName+".bin", mixName+".sizes")
		}
	case FormatLLMC:
		e.header = 4 * llmcHeaderInts
		e.names = []string{"train.bin", "val.bin"}
	default:
		e.names = []string{"train.bin", "val.bin"}
	}
	if opt.Format == FormatNanoGPT || opt.Format == FormatLLMC {
		e.splits = map[string]shards.Split{}
		e.weighted = len(inputs) > 1
		for _, in := range inputs {
			e.splits[in.Name] = shards.SplitFor(in.Manifest.Totals.Rows, opt.ValFraction)
			e.weighted = e.weighted && in.Weight > 0
		}
	}
	return e, nil
}

func (e *binExporter) resume(cp *checkpoint) error {
	for _, n := range e.names {
		st := cp.Partials[n]
		p, err := openPartial(e.out, n, st)
		if err != nil {
			return err
		}
		e.parts[n] = p
		// llm.c's header holds the token count, so it is written last;
		// the file's hash covers the tokens after it (tokens_sha256).
		p.skip = e.header
		if st.Bytes == 0 && e.header > 0 {
			if _, err := p.Write(make([]byte, e.header)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e *binExporter) shard(ctx context.Context, in *Input, path string, info shards.ShardInfo, _ int) error {
	var bin, sizes *partial
	if e.opt.Format == FormatMegatron {
		bin, sizes = e.parts[in.Name+".bin"], e.parts[in.Name+".sizes"]
	}
	train, val := e.parts["train.bin"], e.parts["val.bin"]
	width := int64(2)
	if e.wide {
		width = 4
	}
	return forEachTokenBatch(path, info, e.tok.VocabSize, &e.fileBuf, func(b *tokenBatch) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		for i := 0; i < b.rows(); i++ {
			n := b.len(i)
			// Megatron stores int32 ids; ids below 2^31 have the
			// same bytes as uint32.
			var raw []byte
			if e.wide && b.u16 != nil {
				raw = u32Bytes(b.appendTokens(nil, i), &e.scratch)
			} else {
				raw = b.raw(i, &e.scratch)
			}
			if int64(len(raw)) != int64(n)*width {
				return fmt.Errorf("export: internal error: row of %d tokens wrote %d bytes", n, len(raw))
			}
			if bin == nil {
				if err := e.split(in, b.ids.Value(i), n, raw, width, train, val); err != nil {
					return err
				}
				continue
			}
			if _, err := bin.Write(raw); err != nil {
				return err
			}
			bin.docs++
			bin.tokens += int64(n)
			if sizes != nil {
				if n > math.MaxInt32 {
					return fmt.Errorf("export: %s: document %s has %d tokens, more than Megatron's int32 sizes hold", path, b.ids.Value(i), n)
				}
				e.sizeBuf = binary.LittleEndian.AppendUint32(e.sizeBuf[:0], uint32(n))
				if _, err := sizes.Write(e.sizeBuf); err != nil {
					return err
				}
				sizes.docs++
				sizes.tokens += int64(n)
			}
		}
		return nil
	})
}

// split writes one document's row (raw, n tokens of width bytes) to
// val.bin and train.bin as smelt's loader splits it: the pieces it holds
// out to val.bin, the rest to train.bin (unless the mix is materialised
// there). A document split by chunks may go to both; it counts as a
// document of train.bin then.
func (e *binExporter) split(in *Input, id string, n int, raw []byte, width int64, train, val *partial) error {
	split := e.splits[in.Name]
	var trainToks int64
	for _, held := range []bool{false, true} {
		dst := train
		if held {
			dst = val
		} else if e.weighted {
			continue
		}
		e.ranges = shards.HeldOutRanges(e.ranges[:0], id, n, split, e.opt.ValFraction, e.opt.SeqLen, held)
		var toks int64
		for _, r := range e.ranges {
			if _, err := dst.Write(raw[int64(r[0])*width : int64(r[1])*width]); err != nil {
				return err
			}
			toks += int64(r[1] - r[0])
		}
		dst.tokens += toks
		if !held {
			trainToks = toks
		}
		if toks > 0 && (!held || trainToks == 0) {
			dst.docs++
		}
	}
	return nil
}

func (e *binExporter) save(cp *checkpoint) error {
	if cp.Partials == nil {
		cp.Partials = map[string]partState{}
	}
	for _, n := range e.names {
		p := e.parts[n]
		if err := p.sync(); err != nil {
			return err
		}
		cp.Partials[n] = p.state()
	}
	return nil
}

func (e *binExporter) close() {
	for _, p := range e.parts {
		p.close()
	}
}

func (e *binExporter) finish(ctx context.Context, cp *checkpoint) ([]FileInfo, error) {
	switch e.opt.Format {
	case FormatMegatron:
		if e.opt.MixTokens > 0 {
			if err := e.materialiseMix(ctx, cp, e.parts[mixName+".bin"], e.parts[mixName+".sizes"], e.opt.MixTokens/int64(e.opt.SeqLen+1)); err != nil {
				return nil, err
			}
		}
		var files []FileInfo
		names := make([]string, 0, len(e.inputs)+1)
		for _, in := range e.inputs {
			names = append(names, in.Name)
		}
		if e.opt.MixTokens > 0 {
			names = append(names, mixName)
		}
		for _, n := range names {
			bin, sizes := e.parts[n+".bin"], e.parts[n+".sizes"]
			if err := sizes.sync(); err != nil {
				return nil, err
			}
			idx, err := e.writeIndex(n, sizes)
			if err != nil {
				return nil, err
			}
			if err := bin.commit(); err != nil {
				return nil, err
			}
			role := "data"
			if n == mixName {
				role = "mix" // sequences drawn from the data, not more data
			}
			files = append(files, FileInfo{Name: n + ".bin", Role: role, Bytes: bin.n, SHA256: bin.sum(), Docs: bin.docs, Tokens: bin.tokens}, idx)
		}
		blend := e.dataPath()
		if err := shards.WriteFileAtomic(filepath.Join(e.out, DataPathFile), []byte(blend+"\n")); err != nil {
			return nil, err
		}
		files = append(files, FileInfo{Name: DataPathFile, Role: "blend"})
		return files, nil
	case FormatLLMC:
		if e.weighted {
			if err := e.materialiseMix(ctx, cp, e.parts["train.bin"], nil, e.mixSeqs()); err != nil {
				return nil, err
			}
		}
		var files []FileInfo
		for _, n := range e.names {
			p := e.parts[n]
			if p.tokens > math.MaxInt32 {
				return nil, fmt.Errorf("export: llmc: %s would hold %d tokens, but llm.c's header counts tokens in an int32: export fewer than 2^31 tokens (fewer input directories at a time)", n, p.tokens)
			}
			magic, version := int32(llmcMagic), int32(llmcVersion)
			if e.wide {
				magic, version = llmcMagic32, llmcVersion32
			}
			hdr := make([]byte, e.header)
			binary.LittleEndian.PutUint32(hdr[0:], uint32(magic))
			binary.LittleEndian.PutUint32(hdr[4:], uint32(version))
			binary.LittleEndian.PutUint32(hdr[8:], uint32(p.tokens))
			if err := p.writeAt(hdr, 0); err != nil {
				return nil, err
			}
			if err := p.commit(); err != nil {
				return nil, err
			}
			files = append(files, FileInfo{Name: n, Role: strings.TrimSuffix(n, ".bin"), Bytes: p.n, TokensSHA256: p.sum(), Docs: p.docs, Tokens: p.tokens})
		}
		return files, nil
	default:
		if e.weighted {
			if err := e.materialiseMix(ctx, cp, e.parts["train.bin"], nil, e.mixSeqs()); err != nil {
				return nil, err
			}
		}
		var files []FileInfo
		for _, n := range e.names {
			p := e.parts[n]
			if err := p.commit(); err != nil {
				return nil, err
			}
			files = append(files, FileInfo{Name: n, Role: strings.TrimSuffix(n, ".bin"), Bytes: p.n, SHA256: p.sum(), Docs: p.docs, Tokens: p.tokens})
		}
		return files, nil
	}
}

// writeIndex writes NAME.idx from the sizes spilled while NAME.bin was
// written, streaming them twice (sizes, then pointers).
func (e *binExporter) writeIndex(name string, sizes *partial) (FileInfo, error) {
	n := sizes.docs
	code := byte(megatronDTypeU16)
	width := int64(2)
	if e.wide {
		code, width = megatronDTypeInt32, 4
	}
	a, err := shards.CreateAtomic(filepath.Join(e.out, name+".idx"))
	if err != nil {
		return FileInfo{}, err
	}
	defer a.Abort()
	w := bufio.NewWriterSize(a, 1<<20)
	hdr := []byte(megatronMagic)
	hdr = binary.LittleEndian.AppendUint64(hdr, megatronVersion)
	hdr = append(hdr, code)
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(n))
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(n+1))
	w.Write(hdr)
	spill := partialPath(e.out, sizes.name)
	pass := func(fn func(size uint32) error) error {
		f, err := os.Open(spill)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer f.Close()
		r := bufio.NewReaderSize(io.LimitReader(f, 4*n), 1<<20)
		var b [4]byte
		for i := int64(0); i < n; i++ {
			if _, err := io.ReadFull(r, b[:]); err != nil {
				return fmt.Errorf("export: read %s: %w", spill, err)
			}
			if err := fn(binary.LittleEndian.Uint32(b[:])); err != nil {
				return err
			}
		}
		return nil
	}
	var b8 [8]byte
	if err := pass(func(s uint32) error {
		binary.LittleEndian.PutUint32(b8[:4], s)
		_, err := w.Write(b8[:4])
		return err
	}); err != nil {
		return FileInfo{}, err
	}
	var ptr int64
	if err := pass(func(s uint32) error {
		binary.LittleEndian.PutUint64(b8[:], uint64(ptr))
		ptr += int64(s) * width
		_, err := w.Write(b8[:])
		return err
	}); err != nil {
		return FileInfo{}, err
	}
	for i := int64(0); i <= n; i++ {
		binary.LittleEndian.PutUint64(b8[:], uint64(i))
		if _, err := w.Write(b8[:]); err != nil {
			return FileInfo{}, err
		}
	}
	if err := w.Flush(); err != nil {
		return FileInfo{}, err
	}
	size, sum := a.Size(), a.SHA256()
	if err := a.Commit(); err != nil {
		return FileInfo{}, err
	}
	return FileInfo{Name: name + ".idx", Role: "index", Bytes: size, SHA256: sum, Docs: n}, nil
}

// weights are the blend weights of the inputs: theirs when every input
// has one, else in proportion to their tokens; normalised to sum to 1.
func (e *binExporter) weights() []float64 {
	w := make([]float64, len(e.inputs))
	all := true
	for _, in := range e.inputs {
		all = all && in.Weight > 0
	}
	var sum float64
	for i, in := range e.inputs {
		if all {
			w[i] = in.Weight
		} else {
			w[i] = float64(in.Manifest.Totals.Tokens)
		}
		sum += w[i]
	}
	for i := range w {
		if sum > 0 {
			w[i] /= sum
		}
	}
	return w
}

// dataPath is Megatron's --data-path: "WEIGHT PREFIX ..." per input.
func (e *binExporter) dataPath() string {
	if e.opt.Format != FormatMegatron {
		return ""
	}
	var parts []string
	for i, w := range e.weights() {
		parts = append(parts, strconv.FormatFloat(w, 'g', 12, 64), e.inputs[i].Name)
	}
	return strings.Join(parts, " ")
}

// cleanup removes the sizes spilled for the Megatron indexes, once the
// export's provenance is written.
func (e *binExporter) cleanup() error {
	for _, n := range e.names {
		if strings.HasSuffix(n, ".sizes") {
			if err := os.Remove(partialPath(e.out, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("export: %w", err)
			}
		}
	}
	return nil
}

// mixSeqs is how many sequences of a weighted nanoGPT or llm.c export's
// train.bin holds: the inputs' tokens' worth, so that a source of weight
// w makes w of train.bin whatever its size (repeated or subsampled).
func (e *binExporter) mixSeqs() int64 {
	var total int64
	for _, in := range e.inputs {
		total += in.Manifest.Totals.Tokens
	}
	return max(1, total/int64(e.opt.SeqLen+1))
}

// materialiseMix writes want sequences of SeqLen+1 tokens of the inputs'
// mix, in the order smelt's loader yields them (weights, shuffles, the
// held-out split left out), to bin: for megatron the dataset "mix", one
// sequence per document (sizes), for nanogpt and llmc train.bin. It
// checkpoints every few million tokens.
func (e *binExporter) materialiseMix(ctx context.Context, cp *checkpoint, bin, sizes *partial, want int64) error {
	mix, err := e.loadMix()
	if err != nil {
		return err
	}
	l, err := shards.NewLoader(mix, shards.LoaderOptions{SeqLen: e.opt.SeqLen, BatchSize: 1, Seed: e.opt.Seed, ValFraction: e.opt.ValFraction})
	if err != nil {
		return fmt.Errorf("export: mix: %w", err)
	}
	var seqs int64
	if cp.Mix != nil {
		if err := l.Restore(cp.Mix.Loader); err != nil {
			return fmt.Errorf("export: mix: %w", err)
		}
		seqs = cp.Mix.Seqs
	}
	buf := make([]uint32, l.BatchTokens())
	every := max(1, int64(8<<20)/int64(len(buf)))
	var u16 []uint16
	for seqs < want {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := l.Next(buf); err != nil {
			return fmt.Errorf("export: mix: %w", err)
		}
		var raw []byte
		if e.wide {
			raw = u32Bytes(buf, &e.scratch)
		} else {
			u16 = u16[:0]
			for _, t := range buf {
				u16 = append(u16, uint16(t))
			}
			raw = u16Bytes(u16, &e.scratch)
		}
		if _, err := bin.Write(raw); err != nil {
			return err
		}
		bin.docs++
		bin.tokens += int64(len(buf))
		if sizes != nil {
			e.sizeBuf = binary.LittleEndian.AppendUint32(e.sizeBuf[:0], uint32(len(buf)))
			if _, err := sizes.Write(e.sizeBuf); err != nil {
				return err
			}
			sizes.docs++
			sizes.tokens += int64(len(buf))
		}
		seqs++
		if seqs%every == 0 || seqs == want {
			if err := e.save(cp); err != nil {
				return err
			}
			st, err := l.State()
			if err != nil {
				return err
			}
			cp.Mix = &mixState{Loader: st, Seqs: seqs}
			if err := saveCheckpoint(e.out, cp); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadMix builds the loader's mix of the inputs, with the blend's weights,
// through a mix file in a temporary directory (paths absolute).
func (e *binExporter) loadMix() (*shards.Mix, error) {
	var mf shards.MixFile
	for i, w := range e.weights() {
		dir, err := filepath.Abs(e.inputs[i].Dir)
		if err != nil {
			return nil, err
		}
		mf.Sources = append(mf.Sources, shards.MixFileSource{Name: e.inputs[i].Name, Path: dir, Weight: w})
	}
	data, err := yaml.Marshal(&mf)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "smelt-export-mix-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, "mix.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return nil, err
	}
	return shards.LoadMix(path)
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
