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

// codecFor returns the tokenizer a run was trained with: "bytes" for
// text:FILE runs, none for synthetic ones, else tokenize.GetOrLoad.
func codecFor(name string) (*codec, error) {
	switch name {
	case "bytes":
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
	case "", "synthetic":
		return nil, nil
	}
	tok, err := tokenize.GetOrLoad(name)
	if err != nil {
		return nil, fmt.Errorf("the checkpoint's tokenizer %q: %w", name, err)
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
goes. Generation stops early at the end-of-text token. --prompt-ids and
--ids work in token ids instead, for runs without a tokenizer.`,
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
			cd, err := codecFor(ck.Tokenizer)
			if err != nil {
				return err
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
	f.BoolVar(&ids, "ids", false, "print token ids instead of text")
	f.IntVar(&opt.Tokens, "tokens", 100, "tokens to generate")
	f.Float64Var(&opt.Temperature, "temperature", 0.8, "sampling temperature (0: greedy)")
	f.IntVar(&opt.TopK, "top-k", 40, "sample among the K most likely tokens (0: all)")
	f.Uint64Var(&opt.Seed, "seed", 1, "sampler seed")
	f.IntVar(&threads, "threads", 0, "threads for the math (0: all cores)")
	return cmd
}
