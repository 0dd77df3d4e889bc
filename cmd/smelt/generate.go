package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/smelt-dev/smelt/tokenize"
	"github.com/smelt-dev/smelt/trainer"
	"github.com/spf13/cobra"
)

// codec turns text into token ids and back for one checkpoint.
type codec struct {
	encode func(string) []uint32
	decode func([]uint32) ([]byte, error)
}

// codecFor returns the tokenizer to encode and decode with: --tokenizer
// when given (its ranks must be the run's when the checkpoint records
// them), else the one the checkpoint embeds or names: "bytes" for text:FILE
// runs, none for synthetic ones.
func codecFor(ck *trainer.Checkpoint, flag string) (*codec, error) {
	var tok *tokenize.Tokenizer
	var err error
	switch {
	case flag != "":
		if tok, err = tokenize.GetOrLoad(flag); err != nil {
			return nil, fmt.Errorf("--tokenizer: %w", err)
		}
		if ck.TokenizerHash != "" && tok.RanksHash() != ck.TokenizerHash {
			return nil, fmt.Errorf("--tokenizer %s (ranks hash %s) is not the tokenizer the run was trained with, %q (ranks hash %s)",
				flag, tok.RanksHash(), ck.Tokenizer, ck.TokenizerHash)
		}
	case ck.Tokenizer == "bytes":
		return &codec{
			encode: func(s string) []uint32 {
				out := make([]uint32, len(s))
				for i := range len(s) {
					out[i] = uint32(s[i])
				}
				return out
			},
			decode: func(ids []uint32) ([]byte, error) {
				out := make([]byte, len(ids))
				for i, id := range ids {
					if id > 255 {
						return nil, fmt.Errorf("token %d is not a byte", id)
					}
					out[i] = byte(id)
				}
				return out, nil
			},
		}, nil
	case ck.Tokenizer == "" || ck.Tokenizer == "synthetic":
		return nil, nil
	default:
		if tok, err = ck.LoadTokenizer(); err != nil {
			return nil, err
		}
	}
	if tok.VocabSize() > ck.Config.Vocab {
		return nil, fmt.Errorf("tokenizer %s has %d ids, the model %d", tok.Name(), tok.VocabSize(), ck.Config.Vocab)
	}
	return &codec{encode: tok.EncodeOrdinary, decode: tok.Decode}, nil
}

func parseIDs(s string) ([]uint32, error) {
	var ids []uint32
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		v, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("--prompt-ids: %q is not a token id", f)
		}
		ids = append(ids, uint32(v))
	}
	return ids, nil
}

func newGenerateCmd() *cobra.Command {
	var (
		ckpt, prompt, promptIDs string
		tokFlag                 string
		opt                     trainer.SampleOptions
		threads                 int
		ids                     bool
	)
	cmd := &cobra.Command{
		Use:   "generate --checkpoint DIR --prompt TEXT [--tokens N --temperature T --top-k K]",
		Short: "Sample text from a trained checkpoint",
		Long: `generate loads a checkpoint written by smelt train (a run directory or the
checkpoint file), encodes --prompt with the tokenizer the run was trained
with (recorded in the checkpoint), samples --tokens tokens at --temperature
(0: greedy) from the --top-k most likely, and prints the decoded text as it
goes. Generation stops early at the end-of-text token. The checkpoint embeds
the tokenizer, so this works from any directory; --tokenizer overrides it
(it must have the run's ranks). --prompt-ids and --ids work in token ids
instead and need no tokenizer at all.`,
		Example: `  smelt generate --checkpoint runs/small --prompt "Once upon a time" --tokens 100 --top-k 40`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if ckpt == "" {
				return errors.New("--checkpoint is required")
			}
			m, ck, err := trainer.LoadModel(ckpt, trainer.NewCPU(threads))
			if err != nil {
				return err
			}
			if promptIDs != "" && prompt != "" {
				return errors.New("--prompt and --prompt-ids: give one")
			}
			// A tokenizer is needed only to encode a text prompt or to
			// print text.
			var cd *codec
			if prompt != "" || !ids {
				if cd, err = codecFor(ck, tokFlag); err != nil {
					if prompt != "" {
						return fmt.Errorf("%w (use --tokenizer FILE, or --prompt-ids with --ids)", err)
					}
					return fmt.Errorf("%w (use --tokenizer FILE, or --ids to print token ids)", err)
				}
			}
			var in []uint32
			switch {
			case promptIDs != "":
				if in, err = parseIDs(promptIDs); err != nil {
					return err
				}
			case cd != nil && prompt != "":
				in = cd.encode(prompt)
			case prompt != "":
				return fmt.Errorf("the checkpoint's tokenizer %q cannot encode text: use --prompt-ids", ck.Tokenizer)
			}
			if len(in) == 0 {
				in = []uint32{ck.EOT}
			}
			if cd == nil {
				ids = true
			}
			if ck.Tokenizer != "bytes" && ck.Tokenizer != "synthetic" {
				eot := ck.EOT
				opt.Stop = &eot
			}
			w := cmd.OutOrStdout()
			emit := func(t uint32) error {
				if ids {
					_, err := fmt.Fprintf(w, "%d ", t)
					return err
				}
				if opt.Stop != nil && t == *opt.Stop {
					return nil
				}
				b, err := cd.decode([]uint32{t})
				if err != nil {
					return err
				}
				_, err = w.Write(b)
				return err
			}
			if !ids && prompt != "" {
				fmt.Fprint(w, prompt)
			}
			_, err = trainer.Generate(cmd.Context(), m, in, opt, emit)
			fmt.Fprintln(w)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&ckpt, "checkpoint", "", "run directory or checkpoint file")
	f.StringVar(&prompt, "prompt", "", "text to continue (empty: start from end-of-text)")
	f.StringVar(&promptIDs, "prompt-ids", "", "comma-separated token ids to continue instead of --prompt")
	f.StringVar(&tokFlag, "tokenizer", "", "tokenizer (built-in name or file) instead of the one the checkpoint embeds")
	f.BoolVar(&ids, "ids", false, "print token ids instead of text")
	f.IntVar(&opt.Tokens, "tokens", 100, "tokens to generate")
	f.Float64Var(&opt.Temperature, "temperature", 0.8, "sampling temperature (0: greedy)")
	f.IntVar(&opt.TopK, "top-k", 40, "sample among the K most likely tokens (0: all)")
	f.Uint64Var(&opt.Seed, "seed", 1, "sampler seed")
	f.IntVarP(&threads, "threads", "j", 0, "threads for the math (0: all cores)")
	return cmd
}
