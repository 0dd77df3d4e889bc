package fasttext

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// Example is one training example: its labels (with or without the
// "__label__" prefix) and its text (newlines are read as spaces: one
// example is one fastText line).
type Example struct {
	Labels []string
	Text   string
}

// TrainOptions are the supervised-training hyper-parameters, named as in
// fastText. Zero values take the defaults given.
type TrainOptions struct {
	Dim        int      // 16 (fastText: 100; 16 is lid.176's and keeps models small)
	Epoch      int      // 25 (fastText: 5; 25 and lr 1.0 are its tutorial's small-data settings)
	LR         float64  // 1.0 (fastText: 0.1)
	WordNgrams int      // 2 (word bigrams, as the DCLM and GPT-3 style classifiers use)
	MinCount   int      // 1
	Minn, Maxn int      // character n-gram lengths; 0 and 0 (off)
	Bucket     int      // 1<<20 hash buckets for n-grams (fastText: 2,000,000)
	Loss       LossName // LossSoftmax; LossOVA is the other one trained here
	// LRUpdateRate is how often (in tokens) the learning rate decays (100).
	LRUpdateRate int
	// Seed seeds the initialisation and the label choice (deterministic).
	Seed uint64
}

func (o *TrainOptions) defaults() {
	if o.Dim == 0 {
		o.Dim = 16
	}
	if o.Epoch == 0 {
		o.Epoch = 25
	}
	if o.LR == 0 {
		o.LR = 1
	}
	if o.WordNgrams == 0 {
		o.WordNgrams = 2
	}
	if o.MinCount == 0 {
		o.MinCount = 1
	}
	if o.Bucket == 0 {
		o.Bucket = 1 << 20
	}
	if o.Loss == 0 {
		o.Loss = LossSoftmax
	}
	if o.LRUpdateRate == 0 {
		o.LRUpdateRate = 100
	}
}

// Train fits a supervised fastText model on examples with fastText's
// algorithm: the average of the rows of a line's words and n-grams is the
// hidden vector, a softmax (or one sigmoid per label) over the output
// matrix, plain SGD with a learning rate decaying linearly to zero over all
// epochs' tokens. It runs on one goroutine, so the same examples and
// options give the same model bytes (fastText's Hogwild threads do not).
// The model saves in fastText's format and the reference fastText loads it.
func Train(ctx context.Context, examples []Example, opt TrainOptions) (*Model, error) {
	opt.defaults()
	if opt.Loss != LossSoftmax && opt.Loss != LossOVA {
		return nil, fmt.Errorf("fasttext train: loss %s not supported (softmax or ova)", opt.Loss)
	}
	if opt.Dim < 1 || opt.Dim > 1024 || opt.Bucket < 0 || opt.Bucket > 1<<26 || opt.Minn < 0 || opt.Maxn < opt.Minn {
		return nil, fmt.Errorf("fasttext train: bad options %+v", opt)
	}
	lines := make([]string, len(examples))
	for i, e := range examples {
		var b strings.Builder
		for _, l := range e.Labels {
			if !strings.HasPrefix(l, LabelPrefix) {
				b.WriteString(LabelPrefix)
			}
			b.WriteString(l)
			b.WriteByte(' ')
		}
		b.WriteString(e.Text)
		lines[i] = b.String()
	}
	a := Args{Dim: int32(opt.Dim), WS: 5, Epoch: int32(opt.Epoch), MinCount: int32(opt.MinCount), Neg: 5,
		WordNgrams: int32(opt.WordNgrams), Loss: opt.Loss, Model: ModelSupervised, Bucket: int32(opt.Bucket),
		Minn: int32(opt.Minn), Maxn: int32(opt.Maxn), LRUpdateRate: int32(opt.LRUpdateRate), T: 1e-4}
	d := buildDictionary(lines, &a)
	if d.nlabels == 0 {
		return nil, errors.New("fasttext train: no labels in the examples")
	}
	if d.nwords == 0 {
		return nil, errors.New("fasttext train: no words in the examples")
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x9e3779b97f4a7c15))
	dim := int64(opt.Dim)
	in := &denseMatrix{m: int64(d.nwords) + int64(opt.Bucket), n: dim}
	in.data = make([]float32, in.m*dim)
	bound := 1 / float64(dim)
	for i := range in.data {
		in.data[i] = float32((rng.Float64()*2 - 1) * bound)
	}
	out := &denseMatrix{m: int64(d.nlabels), n: dim, data: make([]float32, int64(d.nlabels)*dim)}
	m := &Model{Args: a, Version: fileVersion, dict: d, input: in, output: out}

	hidden := make([]float32, dim)
	grad := make([]float32, dim)
	probs := make([]float32, d.nlabels)
	var st lineState
	total := float64(opt.Epoch) * float64(d.ntokens)
	// Each line is read into its input rows and labels once, not once per
	// epoch (the dictionary lookups were half of training time); the rows
	// take 4 bytes per word and word n-gram, about 1.5 times the text.
	type encoded struct{ idsEnd, labelsEnd, tokens int64 }
	enc := make([]encoded, len(lines))
	var allIDs, allLabels []int32
	for li, line := range lines {
		if li%1024 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		d.line(&st, line, true, true)
		allIDs = append(allIDs, st.ids...)
		allLabels = append(allLabels, st.labels...)
		enc[li] = encoded{int64(len(allIDs)), int64(len(allLabels)), int64(countTokens(line)) + 1}
	}
	// As in fastText, the learning rate follows the tokens processed,
	// updated every LRUpdateRate tokens.
	var seen, local int64
	lr := opt.LR
	for ep := 0; ep < opt.Epoch; ep++ {
		var idStart, labelStart int64
		for li, e := range enc {
			if li%1024 == 0 && ctx.Err() != nil {
				return nil, ctx.Err()
			}
			ids, labels := allIDs[idStart:e.idsEnd], allLabels[labelStart:e.labelsEnd]
			idStart, labelStart = e.idsEnd, e.labelsEnd
			local += e.tokens
			if local > int64(opt.LRUpdateRate) {
				seen += local
				local = 0
				lr = opt.LR * max(0, 1-float64(seen)/total)
			}
			if len(labels) == 0 || len(ids) == 0 {
				continue
			}
			clear(hidden)
			for _, id := range ids {
				in.addRow(hidden, id)
			}
			inv := float32(1 / float64(len(ids)))
			for j := range hidden {
				hidden[j] *= inv
			}
			clear(grad)
			if opt.Loss == LossSoftmax {
				target := labels[rng.IntN(len(labels))]
				mx := float32(math.Inf(-1))
				for i := range probs {
					probs[i] = out.dotRow(hidden, int32(i))
					mx = max(mx, probs[i])
				}
				var z float32
				for i, v := range probs {
					probs[i] = float32(math.Exp(float64(v - mx)))
					z += probs[i]
				}
				for i := range probs {
					y := float32(0)
					if int32(i) == target {
						y = 1
					}
					update(out.row(int32(i)), hidden, grad, float32(lr)*(y-probs[i]/z))
				}
			} else {
				for i := range probs {
					y := float32(0)
					for _, l := range labels {
						if l == int32(i) {
							y = 1
						}
					}
					p := exactSigmoid(out.dotRow(hidden, int32(i)))
					update(out.row(int32(i)), hidden, grad, float32(lr)*(y-p))
				}
			}
			for j := range grad {
				grad[j] *= inv
			}
			for _, id := range ids {
				r := in.row(id)
				for j, g := range grad {
					r[j] += g
				}
			}
		}
	}
	return m, nil
}

// update adds alpha * w to grad, then alpha * hidden to the output row w.
func update(w, hidden, grad []float32, alpha float32) {
	for j := range grad {
		grad[j] += alpha * w[j]
	}
	for j := range w {
		w[j] += alpha * hidden[j]
	}
}

func exactSigmoid(x float32) float32 {
	return float32(1 / (1 + math.Exp(-float64(x))))
}

func countTokens(line string) int {
	n := 0
	in := false
	for i := 0; i < len(line); i++ {
		if isSpace(line[i]) {
			in = false
		} else if !in {
			in = true
			n++
		}
	}
	return n
}

// buildDictionary counts the words and labels of the lines (each line
// ends with EOS), drops words seen fewer than a.MinCount times, and orders
// words before labels, each by decreasing count.
func buildDictionary(lines []string, a *Args) *Dictionary {
	counts := map[string]int64{}
	var ntokens int64
	add := func(w string) {
		counts[w]++
		ntokens++
	}
	for _, line := range lines {
		for i := 0; i < len(line); {
			if isSpace(line[i]) {
				i++
				continue
			}
			j := i + 1
			for j < len(line) && !isSpace(line[j]) {
				j++
			}
			add(line[i:j])
			i = j
		}
		add(EOS)
	}
	var es []entry
	for w, c := range counts {
		typ := int8(typeWord)
		if strings.HasPrefix(w, LabelPrefix) {
			typ = typeLabel
		} else if c < int64(a.MinCount) {
			continue
		}
		es = append(es, entry{word: w, count: c, typ: typ})
	}
	sortEntries(es)
	d := &Dictionary{words: es, ntokens: ntokens, pruneSize: -1}
	for _, e := range es {
		if e.typ == typeWord {
			d.nwords++
		} else {
			d.nlabels++
		}
	}
	d.setArgs(a)
	d.index()
	return d
}
