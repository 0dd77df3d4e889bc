package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/tokenize"
	"github.com/spf13/cobra"
)

func newTokenizeCmd() *cobra.Command {
	var (
		out, tokName, source string
		compression          string
		opts                 tokenize.Options
		workers              int
		shardMB              float64
	)
	cmd := &cobra.Command{
		Use:   "tokenize DIR... --out DIR --tokenizer NAME|FILE",
		Short: "Encode document shards into token shards (Arrow IPC) with a tokens manifest",
		Long: `tokenize reads finished document-shard directories, encodes every
document's text with the tokenizer on --workers goroutines, appends the
end-of-text token (--eos; by default the tokenizer's own, from its
tokenizer_config.json or post-processor for a tokenizer.json, the eos
piece (</s>) of a SentencePiece .model, whose bos piece <s> also starts
every document unless --bos none), after a
beginning-of-text token when the tokenizer adds one (--bos), and writes size-bounded token shards to --out: Arrow IPC
files with columns id, source, tokens (list<uint16> when the vocabulary has
at most 65536 ids, else list<uint32>) and n_tokens, their buffers
uncompressed (raw little-endian ids, which pyarrow can memory-map for numpy)
or, with --token-compression zstd, zstd-compressed (level 1: about 1.6x
smaller for GPT-2 ids, and about a fifth more CPU for the stage).
Output is the same, byte for byte, whatever the worker count.

manifest.json records the tokenizer (name, ranks hash, vocabulary size,
end-of-text id), the compression, tokens and documents per source, and every shard with
rows, tokens, bytes and sha256. Documents with empty text are dropped
(tokenize/empty). A killed run resumes when started again with the same
arguments.

A tiktoken rank file (Llama 3's original/tokenizer.model) holds only token
bytes and ranks: give its split pattern with --pattern (a name such as
llama3, cl100k, o200k, or a regular expression) and its special tokens with
--specials (TOKEN=ID,... or a file such as the model's tokenizer_config.json,
whose eos_token becomes the default --eos).`,
		Example: `  smelt tokenize shards/cc-dedup --out tokens/cc --tokenizer gpt2
  smelt tokenize shards/wiki --out tokens/wiki --tokenizer gpt2 --source wikipedia
  smelt tokenize shards/cc --out tokens/llama3 --tokenizer llama3/tokenizer.json --eos '<|end_of_text|>'
  smelt tokenize shards/cc --out tokens/spm --tokenizer spm/tokenizer.model --eos '</s>'
  smelt tokenize shards/cc --out tokens/llama3 --tokenizer llama3/original/tokenizer.model --pattern llama3 --specials llama3/tokenizer_config.json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			targetBytes, err := shards.ShardBytes(shardMB) // also checked for every verb in checkShardMB
			if err != nil {
				return fmt.Errorf("--shard-mb: %w", err)
			}
			if _, err := shards.CheckTokenCompression(compression); err != nil {
				return fmt.Errorf("--token-compression: %w", err)
			}
			if tokName == "" {
				return fmt.Errorf("--tokenizer is required (a built-in name such as gpt2, or a file)")
			}
			args, remote, err := remoteIO(cmd.Context(), args, out) // s3:// inputs and --out
			if err != nil {
				return err
			}
			out = remote.Dir
			tok, err := tokenize.Open(tokName, opts)
			if err != nil {
				return err
			}
			if err := tok.CheckEOT(); err != nil {
				return err
			}
			in, err := shards.OpenDocDirs(args...)
			if err != nil {
				return err
			}
			total := in.TotalDataBytes()
			in.Close()
			p := newProgress(cmd.ErrOrStderr(), "tokenize", total)
			start := time.Now()
			st, err := shards.Tokenize(cmd.Context(), shards.TokenizeConfig{
				Inputs:      args,
				Out:         out,
				Encoder:     tok,
				Source:      source,
				Workers:     workers,
				TargetBytes: targetBytes,
				Compression: compression,
				Progress:    func(docs, bytes, _, _ int64) { p.update(bytes, docs, docs) },
			})
			p.finish(err)
			if err == nil {
				err = remote.Publish(cmd.Context())
			}
			if err != nil {
				return remote.Err(err)
			}
			m, err := shards.ReadManifest(out)
			if err != nil {
				return err
			}
			secs := time.Since(start).Seconds()
			slog.Info("tokenize done", "out", out, "docs", st.Out.Docs, "tokens", m.Totals.Tokens,
				"shards", len(m.Shards), "empty_dropped", st.Dropped[shards.DropEmpty].Docs,
				"seconds", fmt.Sprintf("%.1f", secs), "tokens_per_s", tokensPerSecond(m.Totals.Tokens, secs))
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "tokenize: %d documents, %d tokens in %d shards; %s tokens/s, %.1f MB/s of text (%.1f s)\n",
				st.Out.Docs, m.Totals.Tokens, len(m.Shards), tokensPerSecond(m.Totals.Tokens, secs), float64(st.In.Bytes)/1e6/max(secs, 1e-9), secs)
			return err
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "output token-shard directory (required)")
	cmd.Flags().StringVarP(&tokName, "tokenizer", "t", "", "tokenizer: built-in name (gpt2, ...) or a tokenizer file (required)")
	cmd.Flags().StringVar(&opts.EOS, "eos", "", "end-of-text token that ends every document (default: the tokenizer's own, e.g. <|endoftext|> or tokenizer_config.json's eos_token)")
	cmd.Flags().StringVar(&opts.BOS, "bos", "", "beginning-of-text token that starts every document (default: the one the tokenizer's post-processor adds, if any; \"none\" for none)")
	addTiktokenFlags(cmd, &opts)
	cmd.Flags().StringVar(&source, "source", "", "replace every document's source name (for mixing)")
	cmd.Flags().IntVarP(&workers, "workers", "j", 0, "encoding goroutines (0 = all cores); output does not depend on it")
	cmd.Flags().Float64Var(&shardMB, "shard-mb", 64, shardMBUsage)
	cmd.Flags().StringVar(&compression, "token-compression", shards.TokenCompressionNone, "token shards' Arrow buffers: none (raw ids, memory-mappable) or zstd (level 1, about 1.6x smaller for GPT-2 ids)")
	return cmd
}
