package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/smelt-dev/smelt/tokenize"
)

func newTokenizerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokenizer",
		Short: "Encode, decode, inspect and train byte-level BPE tokenizers",
		Long: `Byte-level BPE tokenizers, exact to tiktoken: r50k_base (gpt2), p50k_base,
cl100k_base, o200k_base built in, or a file: a tiktoken rank file, a GPT-2
encoder.json (+ vocab.bpe beside it), a Hugging Face tokenizer.json or a
SentencePiece .model (BPE or Unigram).`,
	}
	cmd.AddCommand(newTokenizerEncodeCmd(), newTokenizerDecodeCmd(), newTokenizerInfoCmd(), newTokenizerTrainCmd())
	return cmd
}

// addTiktokenFlags registers --pattern and --specials, which a tiktoken
// rank file needs (its file holds only token bytes and ranks).
func addTiktokenFlags(cmd *cobra.Command, o *tokenize.Options) {
	cmd.Flags().StringVar(&o.Pattern, "pattern", "", "a tiktoken rank file's split pattern: "+strings.Join(tokenize.PatternNames(), ", ")+" or a regular expression (required for a tiktoken file not named after a built-in)")
	cmd.Flags().StringVar(&o.Specials, "specials", "", "a tiktoken rank file's special tokens: TOKEN=ID,... or a file (JSON {TOKEN: ID}, tokenizer_config.json, tokenizer.json, or TOKEN ID lines)")
}

// openTokenizerInput opens a file argument; "-" is standard input.
func openTokenizerInput(cmd *cobra.Command, path string) (io.ReadCloser, error) {
	if path == "-" {
		return io.NopCloser(cmd.InOrStdin()), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func newTokenizerEncodeCmd() *cobra.Command {
	var name string
	var opts tokenize.Options
	var asJSON, allowSpecial bool
	cmd := &cobra.Command{
		Use:   "encode --tokenizer NAME|FILE FILE...",
		Short: "Print each file's token ids on one line (space-separated, or a JSON array with --json)",
		Long: `Print each file's token ids on one line, separated by spaces, or as a JSON
array with --json. "-" reads standard input. Special-token text is an error
unless --allow-special, which encodes it as the special token (tiktoken's
allowed_special="all").`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := tokenize.Open(name, opts)
			if err != nil {
				return err
			}
			allowed := []string(nil)
			if allowSpecial {
				allowed = tokenize.AllSpecial
			}
			w := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<16)
			for _, path := range args {
				if err := cmd.Context().Err(); err != nil {
					return err
				}
				in, err := openTokenizerInput(cmd, path)
				if err != nil {
					return fmt.Errorf("tokenizer encode: %w", err)
				}
				first := true
				num := make([]byte, 0, 12)
				if asJSON {
					w.WriteByte('[')
				}
				err = tok.EncodeStream(in, allowed, nil, 0, func(ids []uint32) error {
					for _, id := range ids {
						if !first {
							if asJSON {
								w.WriteByte(',')
							} else {
								w.WriteByte(' ')
							}
						}
						first = false
						w.Write(strconv.AppendUint(num[:0], uint64(id), 10))
					}
					return nil
				})
				in.Close()
				if err != nil {
					return fmt.Errorf("tokenizer encode: %s: %w", path, err)
				}
				if asJSON {
					w.WriteByte(']')
				}
				w.WriteByte('\n')
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVarP(&name, "tokenizer", "t", "r50k_base", "built-in encoding name or tokenizer file")
	addTiktokenFlags(cmd, &opts)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each file's ids as a JSON array")
	cmd.Flags().BoolVar(&allowSpecial, "allow-special", false, "encode special-token text as special tokens instead of failing")
	return cmd
}

// parseTokenizerIDs reads ids separated by spaces, commas, newlines, or JSON
// brackets.
func parseTokenizerIDs(line string) ([]uint32, error) {
	fields := strings.FieldsFunc(line, func(r rune) bool {
		return r == ' ' || r == ',' || r == '[' || r == ']' || r == '\t' || r == '\r'
	})
	ids := make([]uint32, 0, len(fields))
	for _, f := range fields {
		v, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not a token id", f)
		}
		ids = append(ids, uint32(v))
	}
	return ids, nil
}

func newTokenizerDecodeCmd() *cobra.Command {
	var name string
	var opts tokenize.Options
	cmd := &cobra.Command{
		Use:   "decode --tokenizer NAME|FILE [FILE...]",
		Short: "Read token ids (as encode prints them) and write the text they encode",
		Long: `Read token ids, one encoded text per line (space-separated or JSON arrays, as
encode prints them), from files or standard input, and write the decoded
bytes of each line to standard output with nothing added, so
"encode F | decode" reproduces F byte for byte.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := tokenize.Open(name, opts)
			if err != nil {
				return err
			}
			if len(args) == 0 {
				args = []string{"-"}
			}
			w := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<16)
			for _, path := range args {
				in, err := openTokenizerInput(cmd, path)
				if err != nil {
					return fmt.Errorf("tokenizer decode: %w", err)
				}
				br := bufio.NewReaderSize(in, 1<<16)
				var off int64
				var out []byte
				for lineNo := 1; ; lineNo++ {
					line, rerr := br.ReadString('\n')
					if len(line) > 0 {
						ids, err := parseTokenizerIDs(strings.TrimSuffix(line, "\n"))
						if err == nil {
							out, err = tok.AppendDecode(out[:0], ids)
						}
						if err != nil {
							in.Close()
							return fmt.Errorf("tokenizer decode: %s: line %d (byte offset %d): %w", path, lineNo, off, err)
						}
						if _, err := w.Write(out); err != nil {
							in.Close()
							return err
						}
						off += int64(len(line))
					}
					if rerr == io.EOF {
						break
					}
					if rerr != nil {
						in.Close()
						return fmt.Errorf("tokenizer decode: %s at byte offset %d: %w", path, off, rerr)
					}
				}
				in.Close()
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVarP(&name, "tokenizer", "t", "r50k_base", "built-in encoding name or tokenizer file")
	addTiktokenFlags(cmd, &opts)
	return cmd
}

func newTokenizerInfoCmd() *cobra.Command {
	var name string
	var opts tokenize.Options
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "info --tokenizer NAME|FILE",
		Short: "Describe a tokenizer: vocabulary size, special tokens, pattern, ranks hash",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := tokenize.Open(name, opts)
			if err != nil {
				return err
			}
			type special struct {
				Token string `json:"token"`
				ID    uint32 `json:"id"`
			}
			var specials []special
			for s, id := range tok.Specials() {
				specials = append(specials, special{s, id})
			}
			sort.Slice(specials, func(i, j int) bool { return specials[i].ID < specials[j].ID })
			info := struct {
				Name      string    `json:"name"`
				VocabSize int       `json:"vocab_size"`
				EOT       *uint32   `json:"eot"`
				Pattern   string    `json:"pattern"`
				Regexp    string    `json:"regexp"`
				Specials  []special `json:"specials"`
				RanksHash string    `json:"ranks_sha256"`
			}{Name: tok.Name(), VocabSize: tok.VocabSize(), Pattern: tok.Pattern().String(), Regexp: tok.PatternRegexp(),
				Specials: specials, RanksHash: tok.RanksHash()}
			if eot, ok := tok.EOT(); ok {
				info.EOT = &eot
			}
			if kind, norm, ok := tok.SentencePiece(); ok {
				info.Pattern, info.Regexp = "SentencePiece "+kind, "(normalizer: "+norm+")"
			} else if tok.PatternRegexp() != tok.Pattern().Regexp() {
				info.Pattern = "regex" // a tiktoken file's own --pattern
			} else if tok.IsPipeline() {
				info.Pattern, info.Regexp = "tokenizer.json", "(its normalizer, pre_tokenizer and added tokens)"
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				return enc.Encode(info)
			}
			fmt.Fprintf(out, "name        %s\nvocab size  %d\n", info.Name, info.VocabSize)
			if info.EOT != nil {
				_, from := tok.DefaultEOS()
				fmt.Fprintf(out, "eot         %d %s (from %s)\n", *info.EOT, tok.EOSName(), from)
			} else {
				fmt.Fprintf(out, "eot         (none: smelt tokenize needs --eos)\n")
			}
			if n, from := tok.DefaultBOS(); n != "" {
				id, _ := tok.BOS()
				fmt.Fprintf(out, "bos         %d %s (from %s; smelt tokenize adds it, --bos none does not)\n", id, n, from)
			}
			fmt.Fprintf(out, "pattern     %s  %s\n", info.Pattern, info.Regexp)
			for _, s := range specials {
				fmt.Fprintf(out, "special     %-20s %d\n", s.Token, s.ID)
			}
			_, err = fmt.Fprintf(out, "ranks hash  %s\n", info.RanksHash)
			return err
		},
	}
	cmd.Flags().StringVarP(&name, "tokenizer", "t", "r50k_base", "built-in encoding name or tokenizer file")
	addTiktokenFlags(cmd, &opts)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newTokenizerTrainCmd() *cobra.Command {
	var vocab, workers int
	var specials []string
	var out, pattern string
	cmd := &cobra.Command{
		Use:   "train INPUT... --vocab N --special '<|endoftext|>' --out tokenizer.json",
		Short: "Learn a byte-level BPE vocabulary (cs336-exact) and write a Hugging Face tokenizer.json",
		Long: `Learn a byte-level BPE vocabulary from text files: GPT-2 pre-tokenisation
(or --pattern cl100k|o200k), special tokens split out first and given the
first ids, then the most frequent pair merged until --vocab tokens, ties
broken by the lexicographically greatest pair (the cs336 reference rule).
Input is streamed (.gz and .zst decompressed); the output is written
atomically and loads back with --tokenizer FILE.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if vocab < 0 || vocab > math.MaxInt32 { // BPE training numbers tokens with int32 ids
				return fmt.Errorf("tokenizer train: --vocab %d: want at most %d", vocab, math.MaxInt32)
			}
			var pat tokenize.Pattern
			switch pattern {
			case "gpt2", "r50k", "":
				pat = tokenize.PatternGPT2
			case "cl100k":
				pat = tokenize.PatternCL100K
			case "o200k":
				pat = tokenize.PatternO200K
			default:
				return fmt.Errorf("tokenizer train: --pattern %q: want gpt2, cl100k or o200k", pattern)
			}
			var total int64
			for _, p := range args {
				st, err := os.Stat(p)
				if err != nil {
					return fmt.Errorf("tokenizer train: %w", err)
				}
				total += st.Size()
			}
			prog := newProgress(cmd.ErrOrStderr(), "tokenizer train: reading", total)
			lastMerge := time.Now()
			opts := tokenize.TrainOptions{
				VocabSize: vocab, Specials: specials, Pattern: pat, Workers: workers,
				Progress: func(phase string, done, of int64) {
					switch phase {
					case "count":
						prog.update(done, 0, 0)
					case "merge":
						if done == 0 {
							prog.finish(nil) // reading is done; merging follows
						}
						if time.Since(lastMerge) > 5*time.Second || done == of {
							lastMerge = time.Now()
							slog.Info("tokenizer train: merging", "merges", done, "of", of)
						}
					}
				},
			}
			tr, err := tokenize.TrainFiles(cmd.Context(), args, opts)
			prog.finish(err)
			if err != nil {
				return err
			}
			data, err := tr.MarshalHF()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return fmt.Errorf("tokenizer train: %w", err)
			}
			if err := tokenize.WriteFileAtomic(out, data); err != nil {
				return err
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			var ru syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d tokens (%d specials, 256 bytes, %d merges) from %s in %s; %d distinct pre-tokens; peak RSS %s, Go heap high-water %s\n",
				out, len(tr.Vocab), len(tr.Specials), len(tr.Merges), humanBytes(tr.InputBytes), tr.Duration.Round(time.Millisecond),
				tr.Words, humanBytes(ru.Maxrss*1024), humanBytes(int64(ms.HeapSys)))
			return err
		},
	}
	cmd.Flags().IntVar(&vocab, "vocab", 0, "vocabulary size: specials + 256 bytes + merges (required)")
	cmd.Flags().StringArrayVar(&specials, "special", nil, "special token (repeatable), e.g. '<|endoftext|>'")
	cmd.Flags().StringVarP(&out, "out", "o", "tokenizer.json", "output tokenizer.json")
	cmd.Flags().StringVar(&pattern, "pattern", "gpt2", "pre-tokenisation pattern: gpt2, cl100k or o200k")
	cmd.Flags().IntVarP(&workers, "workers", "j", 0, "pre-tokenisation workers (default: all cores); the result does not depend on it")
	_ = cmd.MarkFlagRequired("vocab")
	return cmd
}
