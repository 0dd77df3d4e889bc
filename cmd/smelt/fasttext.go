package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/smelt-dev/smelt/fasttext"
	"github.com/smelt-dev/smelt/filter"
	"github.com/smelt-dev/smelt/ingest"
	"github.com/spf13/cobra"
)

func newFastTextCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fasttext",
		Short: "Predict with fastText models (lid.176, published quality classifiers) and train them",
		Long: `fasttext runs fastText models in Go: .bin and quantized .ftz files, with
the reference fastText's tokenisation, hashing and probabilities, so
scripts written for fastText's command line work unchanged.`,
	}
	cmd.AddCommand(newFastTextPredictCmd("predict", false), newFastTextPredictCmd("predict-prob", true), newFastTextTrainCmd())
	return cmd
}

func newFastTextPredictCmd(name string, withProb bool) *cobra.Command {
	what := "the k most likely labels"
	if withProb {
		what += " and their probabilities"
	}
	return &cobra.Command{
		Use:   name + " MODEL FILE|- [K] [THRESHOLD]",
		Short: "Print " + what + " for every line of FILE (- for stdin), as fastText " + name + " does",
		Long: `` + name + ` prints one line per input line: ` + map[bool]string{true: "__label__A PROB __label__B PROB ...", false: "__label__A __label__B ..."}[withProb] + `
with the labels best first, K of them (default 1, -1 for all) whose
probability is at least THRESHOLD (default 0), exactly as fastText's own
'fasttext ` + name + `' prints them. Each line is one text: words are split
at spaces, tabs and the other ASCII blanks, and the newline is fastText's
end-of-line token.`,
		Example: `  smelt fasttext ` + name + ` lid.176.ftz docs.txt 3
  echo "Bonjour tout le monde" | smelt fasttext ` + name + ` lid.176.ftz -`,
		Args: cobra.RangeArgs(2, 4),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, threshold := 1, 0.0
			var err error
			if len(args) > 2 {
				if k, err = strconv.Atoi(args[2]); err != nil || k == 0 || k < -1 {
					return fmt.Errorf("k %q: want a positive number or -1", args[2])
				}
			}
			if len(args) > 3 {
				if threshold, err = strconv.ParseFloat(args[3], 64); err != nil || threshold < 0 || threshold > 1 {
					return fmt.Errorf("threshold %q: want a number in [0, 1]", args[3])
				}
			}
			m, err := fasttext.Load(args[0])
			if err != nil {
				return err
			}
			var in io.Reader = cmd.InOrStdin()
			if args[1] != "-" {
				f, err := os.Open(args[1])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			w := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<16)
			var line []byte
			err = m.PredictLines(in, k, float32(threshold), func(preds []fasttext.Prediction) error {
				line = line[:0]
				for i, p := range preds {
					if i > 0 {
						line = append(line, ' ')
					}
					line = append(line, p.Label...)
					if withProb {
						line = append(line, ' ')
						// C++ iostream's default float format (%g, 6 digits).
						line = strconv.AppendFloat(line, float64(p.Prob), 'g', 6, 64)
					}
				}
				line = append(line, '\n')
				_, err := w.Write(line)
				return err
			})
			if err != nil {
				return fmt.Errorf("%s %s: %w", name, args[1], err)
			}
			return w.Flush()
		},
	}
}

func newFastTextTrainCmd() *cobra.Command {
	var (
		positive, negative []string
		out                string
		chunkBytes         int
		holdOut            float64
		loss               string
		opt                fasttext.TrainOptions
	)
	cmd := &cobra.Command{
		Use:   "train --positive PATH... --negative PATH... --out MODEL.bin",
		Short: "Train a supervised fastText quality classifier (reference vs crawl), saved in fastText's format",
		Long: `train reads positive (curated reference) and negative (raw crawl) documents
as 'smelt classifier train' does (document-shard directories or anything
'smelt ingest' reads; longer documents cut at line breaks into pieces of
about --chunk-bytes), labels them __label__hq and __label__cc, holds out a
hash-chosen fraction, trains fastText's supervised model on the rest
(word vectors averaged over words and word n-grams, softmax, SGD with a
linearly decaying learning rate; deterministic, one thread) and prints
accuracy, precision, recall and ROC AUC of P(__label__hq) on the held-out
split. The model file is a fastText .bin: the reference fastText loads it
and predicts the same labels; use it with 'smelt filter --classifier
fasttext:MODEL.bin' or 'smelt fasttext predict-prob'.`,
		Example: `  smelt fasttext train --positive books/ --negative crawl/*.warc.gz --out quality.bin`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" || len(positive) == 0 || len(negative) == 0 {
				return fmt.Errorf("fasttext train needs --positive, --negative and --out")
			}
			switch loss {
			case "softmax":
				opt.Loss = fasttext.LossSoftmax
			case "ova":
				opt.Loss = fasttext.LossOVA
			default:
				return fmt.Errorf("--loss %q: softmax or ova", loss)
			}
			ctx := cmd.Context()
			var train []fasttext.Example
			var test []string
			var testPos []bool
			for _, set := range []struct {
				paths []string
				pos   bool
			}{{positive, true}, {negative, false}} {
				docs, err := loadTrainingDocs(ctx, set.paths)
				if err != nil {
					return err
				}
				label := map[bool]string{true: "hq", false: "cc"}[set.pos]
				n := 0
				for _, d := range docs {
					for i, piece := range filter.ChunkText(d.Text, chunkBytes) {
						n++
						if filter.InHoldOut(d.ID+"#"+strconv.Itoa(i), holdOut) {
							test, testPos = append(test, piece), append(testPos, set.pos)
						} else {
							train = append(train, fasttext.Example{Labels: []string{label}, Text: piece})
						}
					}
				}
				slog.Info("loaded training documents", "positive", set.pos, "documents", len(docs), "examples", n)
			}
			start := time.Now()
			m, err := fasttext.Train(ctx, train, opt)
			if err != nil {
				return err
			}
			slog.Info("trained", "examples", len(train), "seconds", fmt.Sprintf("%.1f", time.Since(start).Seconds()))
			if err := m.Save(out); err != nil {
				return err
			}
			clf, err := filter.NewFastTextClassifier(m, filter.DefaultFastTextLabel)
			if err != nil {
				return err
			}
			scores := make([]float64, len(test))
			for i, s := range test {
				scores[i] = clf.Score(s)
			}
			res := filter.ComputeMetrics(scores, testPos)
			_, err = fmt.Fprintf(cmd.OutOrStdout(), `model: %s (fastText %s, dim %d, %d words, %d buckets, word %d-grams, %d epochs)
split        n  positives  accuracy  precision  recall  roc_auc
held-out %4d %10d %9.4f %10.4f %7.4f %8.4f
`, out, m.Args.Loss, m.Args.Dim, m.Dict().Words(), m.Args.Bucket, m.Args.WordNgrams, m.Args.Epoch,
				res.N, res.Positives, res.Accuracy, res.Precision, res.Recall, res.AUC)
			return err
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&positive, "positive", nil, "reference-quality inputs (repeatable)")
	f.StringSliceVar(&negative, "negative", nil, "raw crawl inputs (repeatable)")
	f.StringVarP(&out, "out", "o", "", "model file to write (required)")
	f.IntVar(&chunkBytes, "chunk-bytes", 2000, "split longer documents into pieces of about this many bytes (0 = never)")
	f.Float64Var(&holdOut, "hold-out", 0.2, "fraction of examples held out for evaluation")
	f.StringVar(&loss, "loss", "softmax", "softmax or ova")
	f.IntVar(&opt.Dim, "dim", 16, "vector dimension")
	f.IntVar(&opt.Epoch, "epoch", 25, "passes over the training examples")
	f.Float64Var(&opt.LR, "lr", 1, "initial learning rate (decays linearly to 0)")
	f.IntVar(&opt.WordNgrams, "word-ngrams", 2, "longest word n-gram")
	f.IntVar(&opt.MinCount, "min-count", 1, "drop words seen fewer times")
	f.IntVar(&opt.Minn, "minn", 0, "shortest character n-gram (0 = none)")
	f.IntVar(&opt.Maxn, "maxn", 0, "longest character n-gram (0 = none)")
	f.IntVar(&opt.Bucket, "bucket", 1<<20, "hash buckets for n-grams")
	f.Uint64Var(&opt.Seed, "seed", 0, "initialisation seed")
	return cmd
}

// parseLangID turns --langid's value into a detector: nil (ingest's
// whatlanggo) for "" or "whatlanggo", a fastText model such as lid.176 for
// "fasttext:PATH".
func parseLangID(spec string) (ingest.LangDetector, error) {
	if spec == "" || spec == "whatlanggo" {
		return nil, nil
	}
	path, ok := strings.CutPrefix(spec, "fasttext:")
	if !ok || path == "" {
		return nil, fmt.Errorf("--langid %q: want whatlanggo or fasttext:PATH", spec)
	}
	l, err := fasttext.LoadLangID(path)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// loadClassifier reads --classifier: a smelt logistic-regression model
// file, or fasttext:PATH for a fastText model scored by label.
func loadClassifier(spec, label string) (model *filter.Model, scorer filter.Scorer, sum []byte, err error) {
	path, isFT := strings.CutPrefix(spec, "fasttext:")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("filter --classifier: %w", err)
	}
	h := sha256.Sum256(data)
	if !isFT {
		m, err := filter.UnmarshalModel(data)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		return m, nil, h[:], nil
	}
	m, err := fasttext.Read(bytes.NewReader(data))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("fasttext model %s: %w", path, err)
	}
	c, err := filter.NewFastTextClassifier(m, label)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return nil, c, h[:], nil
}
