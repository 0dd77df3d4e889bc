package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/smelt-dev/smelt/trainer"
	"github.com/spf13/cobra"
)

// parseEvalSet reads NAME=PATH[,PATH...], or a bare PATH named after its
// file (without extension).
func parseEvalSet(s string) (trainer.EvalSet, error) {
	name, paths, ok := strings.Cut(s, "=")
	if !ok {
		paths = s
		base := filepath.Base(filepath.Clean(s))
		name = strings.TrimSuffix(base, filepath.Ext(base))
	}
	var set trainer.EvalSet
	set.Name = strings.TrimSpace(name)
	for _, p := range strings.Split(paths, ",") {
		if p = strings.TrimSpace(p); p != "" {
			set.Paths = append(set.Paths, p)
		}
	}
	if set.Name == "" || len(set.Paths) == 0 {
		return set, fmt.Errorf("eval set %q: want NAME=PATH[,PATH...] or PATH", s)
	}
	return set, nil
}

// withoutLoneSources drops the source row of a set that has only one
// source: it repeats the set's row.
func withoutLoneSources(rows []trainer.EvalResult) []trainer.EvalResult {
	n := map[string]int{}
	for _, r := range rows {
		if r.Source != "" {
			n[r.Set]++
		}
	}
	var out []trainer.EvalResult
	for _, r := range rows {
		if r.Source == "" || n[r.Set] > 1 {
			out = append(out, r)
		}
	}
	return out
}

func newEvalCmd() *cobra.Command {
	var (
		ckpt         string
		asJSON, held bool
		stride, thr  int
	)
	cmd := &cobra.Command{
		Use:   "eval --checkpoint DIR [--json] [--held-out] DATA...",
		Short: "Score a checkpoint on held-out data: loss, perplexity and bits per byte, per source",
		Long: `eval scores the model in --checkpoint (a run directory or checkpoint file)
on each DATA: a token-shard directory, a mix file, a document-shard
directory, or text / JSONL files (one document per file, or per line's
"text", its "source" naming the source), which are tokenized with the
checkpoint's own tokenizer. NAME=PATH[,PATH...] names a set; a bare PATH
is named after the file.

For each DATA, and for each source inside it, it prints the tokens and
UTF-8 bytes scored, the mean loss in nats per token, the perplexity, and
bits per byte (the summed loss / ln 2 / bytes), which compares models
with different tokenizers.

Every document is scored on its own, preceded by the end-of-text id, each
of its tokens and its closing end-of-text id predicted once; a document
longer than the model's context is scored in windows of the context, each
next window --stride tokens further on (default half the context) and
scoring only the tokens not yet scored. The result does not depend on
--threads. --held-out adds the split the run validated on (set "val"):
smelt eval --held-out gives the run's last validation loss.`,
		Example: `  smelt eval --checkpoint runs/small held-out/ sherlock.txt
  smelt eval --checkpoint runs/small --held-out --json
  smelt eval --checkpoint runs/small pages=split/held-out book=sherlock.txt`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if ckpt == "" {
				return errors.New("--checkpoint is required")
			}
			if len(args) == 0 && !held {
				return errors.New("name the data to score (or --held-out)")
			}
			var sets []trainer.EvalSet
			if held {
				ck, err := trainer.LoadCheckpoint(trainer.ResolveCheckpoint(ckpt))
				if err != nil {
					return err
				}
				vs, ok := trainer.HeldOutSet(ck.Options)
				if !ok || ck.Options.ValEvery == 0 {
					return fmt.Errorf("--held-out: the run in %s held no data out (trained with --val-every 0, or on synthetic or text data)", ckpt)
				}
				sets = append(sets, vs)
			}
			for _, a := range args {
				s, err := parseEvalSet(a)
				if err != nil {
					return err
				}
				sets = append(sets, s)
			}
			if thr <= 0 {
				thr = runtime.NumCPU()
			}
			rows, err := trainer.Evaluate(cmd.Context(), ckpt, sets, trainer.EvalOptions{Stride: stride, Workers: thr})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "set\tsource\tdocs\ttokens\tbytes\tnats/token\tperplexity\tbits/byte\t\n")
			for _, r := range withoutLoneSources(rows) {
				src := r.Source
				if src == "" {
					src = "(all)"
				}
				bpb := "-"
				if r.Bytes > 0 {
					bpb = fmt.Sprintf("%.4f", r.BitsPerByte)
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.4f\t%.2f\t%s\t\n", r.Set, src, r.Docs, r.Tokens, r.Bytes, r.LossNats, r.Perplexity, bpb)
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&ckpt, "checkpoint", "", "run directory or checkpoint file (required)")
	f.BoolVar(&asJSON, "json", false, "print the rows as JSON")
	f.BoolVar(&held, "held-out", false, "also score the data the run validated on (its held-out split), as set \"val\"")
	f.IntVar(&stride, "stride", 0, "tokens between the windows of a long document (0: half the model's context)")
	f.IntVarP(&thr, "threads", "j", 0, "windows scored at once (0: all cores); the result does not depend on it")
	return cmd
}
