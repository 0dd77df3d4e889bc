package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/smelt-dev/smelt/filter"
	"github.com/smelt-dev/smelt/ingest"
	"github.com/smelt-dev/smelt/shards"
	"github.com/spf13/cobra"
)

func newClassifierCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "classifier",
		Short: "Train the GPT-3 style quality classifier used by 'smelt filter --classifier'",
	}
	cmd.AddCommand(newClassifierTrainCmd())
	return cmd
}

func newClassifierTrainCmd() *cobra.Command {
	var (
		positive, negative []string
		out, export        string
		opt                filter.TrainOptions
		chunkBytes         int
		bits               uint
		noBigrams          bool
	)
	cmd := &cobra.Command{
		Use:   "train --positive PATH... --negative PATH... --out MODEL",
		Short: "Train reference-vs-crawl logistic regression on hashed word unigrams and bigrams",
		Long: `train reads positive (curated reference) and negative (raw crawl) documents,
splits every document longer than --chunk-bytes at line breaks into pieces
of about that size (so both classes have the same length profile), holds
out a hash-chosen fraction, fits L2-regularised logistic regression on
HashingTF features (lowercased words, unigrams + bigrams, 2^bits buckets,
1+ln(tf), unit L2 norm) with deterministic full-batch L-BFGS, and prints
accuracy, precision, recall and ROC AUC on the held-out split.

PATHs are document-shard directories or anything 'smelt ingest' reads
(WARC, WET, JSONL, Parquet, HTML, text; files, directories or globs).
--export DIR writes the identical features in libsvm format (train.svm,
test.svm) and this model's held-out scores (go_scores.txt) for
filter/bench/sklearn_compare.py.`,
		Example: `  smelt classifier train --positive ref/*.txt --negative crawl/*.warc.gz --out quality.model`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" || len(positive) == 0 || len(negative) == 0 {
				return fmt.Errorf("classifier train needs --positive, --negative and --out")
			}
			ctx := cmd.Context()
			var examples []filter.Example
			for _, set := range []struct {
				paths []string
				pos   bool
			}{{positive, true}, {negative, false}} {
				docs, err := loadTrainingDocs(ctx, set.paths)
				if err != nil {
					return err
				}
				n := len(examples)
				for _, d := range docs {
					for i, piece := range filter.ChunkText(d.Text, chunkBytes) {
						examples = append(examples, filter.Example{ID: d.ID + "#" + strconv.Itoa(i), Text: piece, Positive: set.pos})
					}
				}
				slog.Info("loaded training documents", "positive", set.pos, "documents", len(docs), "examples", len(examples)-n)
			}
			opt.Bits, opt.NoBigrams = bits, noBigrams
			start := time.Now()
			res, err := filter.Train(ctx, examples, opt)
			if err != nil {
				return err
			}
			trainTime := time.Since(start)
			if err := filter.SaveModel(out, res.Model); err != nil {
				return err
			}
			if export != "" {
				if err := exportFeatures(export, examples, res, opt, trainTime); err != nil {
					return err
				}
			}
			return printTrainResult(cmd.OutOrStdout(), res, out)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&positive, "positive", nil, "reference-quality inputs (repeatable)")
	f.StringSliceVar(&negative, "negative", nil, "raw crawl inputs (repeatable)")
	f.StringVarP(&out, "out", "o", "", "model file to write (required)")
	f.StringVar(&export, "export", "", "directory for libsvm features and held-out scores (sklearn comparison)")
	f.IntVar(&chunkBytes, "chunk-bytes", 2000, "split longer documents into pieces of about this many bytes (0 = never)")
	f.UintVar(&bits, "bits", 20, "log2 of the number of hash buckets")
	f.BoolVar(&noBigrams, "no-bigrams", false, "use word unigrams only")
	f.Float64Var(&opt.C, "c", 1, "inverse L2 regularisation strength (scikit-learn's C)")
	f.Float64Var(&opt.HoldOut, "hold-out", 0.2, "fraction of examples held out for evaluation (negative = none)")
	f.BoolVar(&opt.Unbalanced, "unbalanced", false, "weight every example 1 (default: balance the two classes)")
	f.IntVar(&opt.MaxIter, "max-iter", 500, "L-BFGS iteration limit")
	return cmd
}

// loadTrainingDocs reads document-shard directories directly and runs
// anything else through ingest into a temporary directory.
func loadTrainingDocs(ctx context.Context, paths []string) ([]*shards.Document, error) {
	var dirs, files []string
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join(p, "manifest.json")); err == nil {
			dirs = append(dirs, p)
			continue
		}
		files = append(files, p)
	}
	if len(files) > 0 {
		expanded, err := ingest.ExpandInputs(ctx, files)
		if err != nil {
			return nil, err
		}
		tmp, err := os.MkdirTemp("", "smelt-classifier-*")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		st, err := ingest.Run(ctx, expanded, tmp, ingest.Options{Source: "train", Workers: 0,
			Reader: ingest.ReaderOptions{MaxRecordBytes: 64 << 20}})
		if err != nil {
			return nil, fmt.Errorf("read training inputs: %w", err)
		}
		if e := shards.SumCounts(st.Errors); e.Docs > 0 {
			slog.Warn("training inputs had broken records (skipped)", "count", e.Docs)
		}
		docs, err := readAllDocs(tmp)
		if err != nil {
			return nil, err
		}
		more, err := readAllDocs(dirs...)
		return append(more, docs...), err
	}
	return readAllDocs(dirs...)
}

func readAllDocs(dirs ...string) ([]*shards.Document, error) {
	if len(dirs) == 0 {
		return nil, nil
	}
	r, err := shards.OpenDocDirs(dirs...)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var docs []*shards.Document
	for {
		d, err := r.Next()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, d)
	}
}

func exportFeatures(dir string, examples []filter.Example, res *filter.TrainResult, opt filter.TrainOptions, trainTime time.Duration) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, part := range []struct {
		name string
		idx  []int
	}{{"train.svm", res.TrainSet}, {"test.svm", res.TestSet}} {
		f, err := shards.CreateAtomic(filepath.Join(dir, part.name))
		if err != nil {
			return err
		}
		if err := filter.WriteLibSVM(f, examples, part.idx, opt.Bits, !opt.NoBigrams); err != nil {
			f.Abort()
			return fmt.Errorf("export %s: %w", part.name, err)
		}
		if err := f.Commit(); err != nil {
			return err
		}
	}
	var b strings.Builder
	for _, s := range res.TestScores {
		b.WriteString(strconv.FormatFloat(s, 'g', -1, 64))
		b.WriteByte('\n')
	}
	if err := shards.WriteFileAtomic(filepath.Join(dir, "go_scores.txt"), []byte(b.String())); err != nil {
		return err
	}
	info, err := json.MarshalIndent(map[string]any{
		"c": opt.C, "bits": opt.Bits, "balanced": !opt.Unbalanced, "bigrams": !opt.NoBigrams,
		"go_test": res.Test, "go_iterations": res.Iterations, "go_train_seconds": trainTime.Seconds(),
	}, "", "  ")
	if err != nil {
		return err
	}
	return shards.WriteFileAtomic(filepath.Join(dir, "info.json"), info)
}

func printTrainResult(w io.Writer, res *filter.TrainResult, path string) error {
	_, err := fmt.Fprintf(w, `model: %s (%d buckets, bigrams %v, %d L-BFGS iterations)
split        n  positives  accuracy  precision  recall  roc_auc
train %7d %10d %9.4f %10.4f %7.4f %8.4f
held-out %4d %10d %9.4f %10.4f %7.4f %8.4f
`, path, len(res.Model.Weights), res.Model.Bigrams, res.Iterations,
		res.Train.N, res.Train.Positives, res.Train.Accuracy, res.Train.Precision, res.Train.Recall, res.Train.AUC,
		res.Test.N, res.Test.Positives, res.Test.Accuracy, res.Test.Precision, res.Test.Recall, res.Test.AUC)
	return err
}
