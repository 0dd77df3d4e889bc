package main

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/smelt-dev/smelt/export"
	"github.com/smelt-dev/smelt/shards"
	"github.com/spf13/cobra"
)

func newExportCmd() *cobra.Command {
	var (
		out, format, compression, mixTokens string
		valFraction                         float64
		rowGroupMB                          float64
		seqLen                              int
		seed                                uint64
	)
	cmd := &cobra.Command{
		Use:   "export DIR|MIX.yaml... --format megatron|nanogpt|llmc|parquet|jsonl --out DIR",
		Short: "Write shards in the formats other trainers and tools read (Megatron-LM, nanoGPT, llm.c, Parquet, JSONL)",
		Long: `export writes finished shard directories (or the sources of mix files) into
--out in another format, streaming one shard at a time:

  megatron  token shards -> NAME.bin + NAME.idx per input (Megatron-LM's and
            GPT-NeoX's indexed dataset: MMIDIDX header version 1, uint16 ids
            when the vocabulary has at most 65,536, else int32; one sequence
            per document), and data_path.txt, the --data-path blend (weights
            from the mix file, else in proportion to tokens). --mix-tokens N
            also writes "mix": N tokens of the mix in smelt's loader order.
  nanogpt   token shards -> train.bin and val.bin, raw uint16 ids, documents
            separated by the end-of-text id; refused past 65,536 ids.
  llmc      token shards -> train.bin and val.bin for llm.c: 256 int32 of
            header (magic 20240520, version 1, token count) and uint16 ids;
            past 65,536 ids, magic 20240801, version 7 and uint32 ids (llm.c's
            Llama 3 layout, which its GPT-2 trainer does not read).
  parquet   document shards -> part-NNNNN.parquet (id, source, url, date,
            text, lang, lang_score, quality, metadata); token shards ->
            (id, source, input_ids, n_tokens; input_ids dictionary-encoded
            over the vocabulary). zstd (or --compression snappy|none), row
            groups of --row-group-mb.
  jsonl     document shards -> part-NNNNN.jsonl.zst (or .gz), Dolma-style
            {id, text, source, created, metadata}.

val.bin holds the documents smelt's loader holds out for validation at
--val-fraction (the same split smelt train uses). export.json, written last,
records the input shards, the tokenizer, each manifest's sha256 and every
output file's size and sha256 (for llm.c files, tokens_sha256: of the bytes
after the 1,024-byte header, which is written last). A killed export resumes when run again with
the same arguments; the output is the same bytes either way.`,
		Example: `  smelt export tokens/cc tokens/wiki --format megatron --out megatron/
  smelt export runs/gpt3/train/mix.yaml --format megatron --mix-tokens 1B --out megatron/
  smelt export tokens/web --format nanogpt --out nanogpt/data/web
  smelt export shards/cc-dedup --format parquet --out parquet/cc`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			f, err := export.ParseFormat(format)
			if err != nil {
				return err
			}
			opt := export.Options{Format: f, ValFraction: valFraction, Compression: compression,
				RowGroupBytes: int64(rowGroupMB * (1 << 20)), SeqLen: seqLen, Seed: seed}
			if mixTokens != "" {
				if opt.MixTokens, err = shards.ParseTokens(mixTokens); err != nil {
					return fmt.Errorf("--mix-tokens: %w", err)
				}
			}
			if rowGroupMB <= 0 {
				return fmt.Errorf("--row-group-mb %v must be positive", rowGroupMB)
			}
			ins, err := export.ResolveInputs(args)
			if err != nil {
				return err
			}
			var total int64
			for _, in := range ins {
				total += shards.SumShards(in.Manifest.Shards).DataBytes
			}
			p := newProgress(cmd.ErrOrStderr(), "export "+format, total)
			opt.Progress = func(done, _ int64) { p.update(done, 0, 0) }
			prov, err := export.Run(cmd.Context(), ins, out, opt)
			p.finish(err)
			if err != nil {
				return err
			}
			for _, fi := range prov.Files {
				slog.Info("export wrote", "file", filepath.Join(out, fi.Name), "role", fi.Role, "docs", fi.Docs, "tokens", fi.Tokens, "bytes", fi.Bytes)
				if fi.Role == "val" && fi.Docs == 0 {
					slog.Warn("val.bin is empty: no document fell in the held-out split; trainers that evaluate on it (nanoGPT, llm.c) need some: raise --val-fraction", "val_fraction", prov.Options.ValFraction, "docs", prov.Docs)
				}
			}
			slog.Info("export done", "format", f, "out", out, "docs", prov.Docs, "tokens", prov.Tokens, "dtype", prov.TokenDType, "provenance", filepath.Join(out, export.SidecarName))
			if prov.DataPath != "" {
				abs, err := filepath.Abs(out)
				if err != nil {
					return err
				}
				fields := strings.Fields(prov.DataPath)
				for i := 1; i < len(fields); i += 2 {
					fields[i] = filepath.Join(abs, fields[i])
				}
				fmt.Fprintf(cmd.OutOrStdout(), "--data-path %s\n", strings.Join(fields, " "))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&out, "out", "o", "", "output directory (required; new or empty, or an unfinished export of the same job)")
	fl.StringVar(&format, "format", "", "megatron, nanogpt, llmc, parquet or jsonl (required)")
	fl.Float64Var(&valFraction, "val-fraction", export.DefaultValFraction, "nanogpt, llmc: fraction of documents in val.bin (smelt's held-out split); megatron --mix-tokens: left out of the mix")
	fl.StringVar(&compression, "compression", "", "jsonl: zstd (default) or gzip; parquet: zstd (default), snappy or none")
	fl.Float64Var(&rowGroupMB, "row-group-mb", float64(export.DefaultRowGroupBytes>>20), "parquet: uncompressed size of a row group in MiB")
	fl.StringVar(&mixTokens, "mix-tokens", "", "megatron: also write this many tokens (e.g. 1B) of the mix in smelt's loader order, as the dataset \"mix\"")
	fl.IntVar(&seqLen, "seq-len", export.DefaultSeqLen, "the loader's sequence length: megatron --mix-tokens and a mix's nanogpt/llmc train.bin draw sequences of seq-len+1 tokens; nanogpt/llmc val.bin holds out chunks of 4 x seq-len tokens of a source with few documents, as smelt train at this --seq-len")
	fl.Uint64Var(&seed, "seed", export.DefaultSeed, "megatron --mix-tokens: the loader's seed (smelt train's default)")
	return cmd
}
