package filter

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Example is one labelled training document.
type Example struct {
	ID       string
	Text     string
	Positive bool
}

// TrainOptions configures Train. Zero values take the defaults.
type TrainOptions struct {
	// Bits is log2 of the hash buckets (20).
	Bits uint
	// NoBigrams turns off word-bigram features.
	NoBigrams bool
	// C is the inverse L2 strength, as in scikit-learn: the objective is
	// C * sum_i s_i * logloss_i + ||w||^2 / 2, the bias unpenalised (1).
	C float64
	// HoldOut is the fraction of examples, chosen by a hash of the ID, kept
	// out of training and scored for the metrics (0 means 0.2; a negative
	// value holds out nothing).
	HoldOut float64
	// Unbalanced weights every example 1 instead of n/(2*n_class) (the
	// default, scikit-learn's class_weight="balanced").
	Unbalanced bool
	// MaxIter bounds L-BFGS iterations (500); Tol is the stopping bound on
	// the gradient's largest component (1e-6).
	MaxIter int
	Tol     float64
}

func (o *TrainOptions) defaults() {
	if o.Bits == 0 {
		o.Bits = 20
	}
	if o.C == 0 {
		o.C = 1
	}
	if o.HoldOut == 0 {
		o.HoldOut = 0.2
	}
	if o.MaxIter == 0 {
		o.MaxIter = 500
	}
	if o.Tol == 0 {
		o.Tol = 1e-6
	}
}

// Metrics are binary-classification metrics at the 0.5 threshold, plus
// ROC AUC.
type Metrics struct {
	N         int     `json:"n"`
	Positives int     `json:"positives"`
	Accuracy  float64 `json:"accuracy"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	AUC       float64 `json:"roc_auc"`
}

// MarshalJSON writes the metrics, with a null AUC when it is undefined
// (a split without both classes).
func (m Metrics) MarshalJSON() ([]byte, error) {
	type plain Metrics
	var auc *float64
	if !math.IsNaN(m.AUC) {
		auc = &m.AUC
	}
	return json.Marshal(struct {
		plain
		AUC *float64 `json:"roc_auc"`
	}{plain(m), auc})
}

// TrainResult is what Train returns.
type TrainResult struct {
	Model *Model
	// Train and Test are the metrics on the training and held-out splits.
	Train, Test Metrics
	// Iterations is the number of L-BFGS iterations run.
	Iterations int
	// TrainSet and TestSet are the split examples' indices into the input.
	TrainSet, TestSet []int
	// TestScores are the model's scores for TestSet, in order.
	TestScores []float64
}

// InHoldOut reports whether the example with this id belongs to the
// held-out split for the given fraction (a hash of the id, so the split
// does not depend on input order).
func InHoldOut(id string, frac float64) bool {
	h := fnv.New64a()
	h.Write([]byte(id))
	return float64(mix64(h.Sum64())>>11)/(1<<53) < frac
}

// Train fits the classifier on examples, deterministically: the features,
// the split and full-batch L-BFGS are all independent of timing, so the
// same examples give the same model bytes.
func Train(ctx context.Context, examples []Example, opt TrainOptions) (*TrainResult, error) {
	opt.defaults()
	if opt.Bits < 10 || opt.Bits > 28 {
		return nil, fmt.Errorf("train: bits %d out of range 10..28", opt.Bits)
	}
	res := &TrainResult{}
	for i, e := range examples {
		if InHoldOut(e.ID, opt.HoldOut) {
			res.TestSet = append(res.TestSet, i)
		} else {
			res.TrainSet = append(res.TrainSet, i)
		}
	}
	var npos int
	for _, i := range res.TrainSet {
		if examples[i].Positive {
			npos++
		}
	}
	nneg := len(res.TrainSet) - npos
	if npos == 0 || nneg == 0 {
		return nil, fmt.Errorf("train: the training split needs positives and negatives (have %d and %d)", npos, nneg)
	}
	bigrams := !opt.NoBigrams
	// Featurise the training split and compact the buckets it uses into
	// dense columns, so the optimiser's vectors are as small as the data.
	X := make([]Vector, len(res.TrainSet))
	y := make([]float64, len(res.TrainSet))
	s := make([]float64, len(res.TrainSet))
	col := map[uint32]int32{}
	var buckets []uint32
	for k, i := range res.TrainSet {
		if k%256 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		X[k] = Featurize(examples[i].Text, opt.Bits, bigrams)
		for _, b := range X[k].Index {
			if _, ok := col[b]; !ok {
				col[b] = int32(len(buckets))
				buckets = append(buckets, b)
			}
		}
		s[k] = 1
		if examples[i].Positive {
			y[k] = 1
			if !opt.Unbalanced {
				s[k] = float64(len(X)) / (2 * float64(npos))
			}
		} else if !opt.Unbalanced {
			s[k] = float64(len(X)) / (2 * float64(nneg))
		}
	}
	cols := make([][]int32, len(X))
	for k, v := range X {
		cols[k] = make([]int32, len(v.Index))
		for j, b := range v.Index {
			cols[k][j] = col[b]
		}
	}
	D := len(buckets)
	// Parameters: D weights then the bias.
	obj := func(w, g []float64) float64 {
		clear(g)
		var f float64
		bias := w[D]
		for k, v := range X {
			z := bias
			for j, c := range cols[k] {
				z += w[c] * float64(v.Value[j])
			}
			// log(1+exp(-yz)) for y in {0,1} mapped to {-1,+1}.
			m := z
			if y[k] == 0 {
				m = -z
			}
			f += s[k] * softplus(-m)
			r := s[k] * (sigmoid(z) - y[k])
			for j, c := range cols[k] {
				g[c] += r * float64(v.Value[j])
			}
			g[D] += r
		}
		f *= opt.C
		var reg float64
		for j := 0; j < D; j++ {
			g[j] = opt.C*g[j] + w[j]
			reg += w[j] * w[j]
		}
		g[D] *= opt.C
		return f + reg/2
	}
	w := make([]float64, D+1)
	iters, err := lbfgs(ctx, obj, w, opt.MaxIter, opt.Tol)
	if err != nil {
		return nil, err
	}
	res.Iterations = iters
	m := &Model{Bits: opt.Bits, Bigrams: bigrams, Weights: make([]float32, 1<<opt.Bits), Bias: float32(w[D])}
	for c, b := range buckets {
		m.Weights[b] = float32(w[c])
	}
	res.Model = m
	trainScores := make([]float64, len(X))
	trainLabels := make([]bool, len(X))
	for k, v := range X {
		trainScores[k] = m.ScoreVector(v)
		trainLabels[k] = y[k] == 1
	}
	res.Train = ComputeMetrics(trainScores, trainLabels)
	testLabels := make([]bool, len(res.TestSet))
	for k, i := range res.TestSet {
		res.TestScores = append(res.TestScores, m.ScoreVector(Featurize(examples[i].Text, opt.Bits, bigrams)))
		testLabels[k] = examples[i].Positive
	}
	res.Test = ComputeMetrics(res.TestScores, testLabels)
	meta, err := json.Marshal(map[string]any{
		"c": opt.C, "bits": opt.Bits, "bigrams": bigrams, "balanced": !opt.Unbalanced,
		"hold_out": opt.HoldOut, "iterations": iters, "train": res.Train, "test": res.Test,
	})
	if err != nil {
		return nil, err
	}
	m.Meta = meta
	return res, nil
}

func softplus(x float64) float64 {
	if x > 30 {
		return x
	}
	if x < -30 {
		return math.Exp(x)
	}
	return math.Log1p(math.Exp(x))
}

// lbfgs minimises f from w in place with limited-memory BFGS (memory 10)
// and a backtracking Armijo line search. It stops when the gradient's
// largest component is below tol, when f stops decreasing, or after
// maxIter iterations, and returns the iterations run.
func lbfgs(ctx context.Context, f func(w, g []float64) float64, w []float64, maxIter int, tol float64) (int, error) {
	const mem = 10
	n := len(w)
	g := make([]float64, n)
	fx := f(w, g)
	var S, Y [][]float64
	var rho []float64
	d := make([]float64, n)
	wNew := make([]float64, n)
	gNew := make([]float64, n)
	alpha := make([]float64, mem)
	for it := 1; it <= maxIter; it++ {
		if err := ctx.Err(); err != nil {
			return it, err
		}
		if maxAbs(g) < tol {
			return it - 1, nil
		}
		// Two-loop recursion: d = -H g.
		copy(d, g)
		for i := len(S) - 1; i >= 0; i-- {
			alpha[i] = rho[i] * dot(S[i], d)
			axpy(-alpha[i], Y[i], d)
		}
		gamma := 1.0
		if k := len(S) - 1; k >= 0 {
			gamma = dot(S[k], Y[k]) / dot(Y[k], Y[k])
		} else {
			gamma = 1 / math.Max(1, math.Sqrt(dot(g, g)))
		}
		for i := range d {
			d[i] *= gamma
		}
		for i := range S {
			b := rho[i] * dot(Y[i], d)
			axpy(alpha[i]-b, S[i], d)
		}
		for i := range d {
			d[i] = -d[i]
		}
		gd := dot(g, d)
		if gd >= 0 { // not a descent direction: restart from the gradient
			S, Y, rho = nil, nil, nil
			for i := range d {
				d[i] = -g[i]
			}
			gd = dot(g, d)
		}
		step := 1.0
		var fNew float64
		for ls := 0; ; ls++ {
			for i := range w {
				wNew[i] = w[i] + step*d[i]
			}
			fNew = f(wNew, gNew)
			if fNew <= fx+1e-4*step*gd {
				break
			}
			if ls == 40 {
				return it, nil // no progress possible at float64 precision
			}
			step /= 2
		}
		sv, yv := make([]float64, n), make([]float64, n)
		for i := range w {
			sv[i] = wNew[i] - w[i]
			yv[i] = gNew[i] - g[i]
		}
		if sy := dot(sv, yv); sy > 1e-12 {
			if len(S) == mem {
				S, Y, rho = S[1:], Y[1:], rho[1:]
			}
			S, Y, rho = append(S, sv), append(Y, yv), append(rho, 1/sy)
		}
		copy(w, wNew)
		copy(g, gNew)
		prev := fx
		fx = fNew
		if prev-fx <= 1e-12*math.Max(1, math.Abs(fx)) {
			return it, nil
		}
	}
	return maxIter, nil
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func axpy(a float64, x, y []float64) {
	for i := range x {
		y[i] += a * x[i]
	}
}

func maxAbs(x []float64) float64 {
	var m float64
	for _, v := range x {
		m = math.Max(m, math.Abs(v))
	}
	return m
}

// ComputeMetrics returns accuracy, precision and recall at 0.5 and the ROC
// AUC (the Mann-Whitney statistic, ties counted half) of scores against
// labels.
func ComputeMetrics(scores []float64, labels []bool) Metrics {
	m := Metrics{N: len(scores)}
	var tp, fp, tn, fn int
	for i, sc := range scores {
		pred := sc >= 0.5
		switch {
		case pred && labels[i]:
			tp++
		case pred:
			fp++
		case labels[i]:
			fn++
		default:
			tn++
		}
	}
	m.Positives = tp + fn
	if m.N > 0 {
		m.Accuracy = float64(tp+tn) / float64(m.N)
	}
	if tp+fp > 0 {
		m.Precision = float64(tp) / float64(tp+fp)
	}
	if tp+fn > 0 {
		m.Recall = float64(tp) / float64(tp+fn)
	}
	m.AUC = rocAUC(scores, labels)
	return m
}

func rocAUC(scores []float64, labels []bool) float64 {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case scores[a] < scores[b]:
			return -1
		case scores[a] > scores[b]:
			return 1
		}
		return 0
	})
	// Sum of positive ranks, average ranks for ties.
	var rankSum float64
	var npos, nneg int
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && scores[idx[j]] == scores[idx[i]] {
			j++
		}
		avg := float64(i+j+1) / 2 // ranks i+1..j
		for k := i; k < j; k++ {
			if labels[idx[k]] {
				rankSum += avg
				npos++
			} else {
				nneg++
			}
		}
		i = j
	}
	if npos == 0 || nneg == 0 {
		return math.NaN()
	}
	return (rankSum - float64(npos)*float64(npos+1)/2) / (float64(npos) * float64(nneg))
}

// WriteLibSVM writes the examples' feature vectors in libsvm text format
// ("1 idx:val ..." with 1-based bucket indices, label 1 or 0), exactly the
// features Train uses, for training another implementation on them.
func WriteLibSVM(w io.Writer, examples []Example, idx []int, bits uint, bigrams bool) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	var line []byte
	for _, i := range idx {
		e := examples[i]
		v := Featurize(e.Text, bits, bigrams)
		line = line[:0]
		if e.Positive {
			line = append(line, '1')
		} else {
			line = append(line, '0')
		}
		for j, b := range v.Index {
			line = append(line, ' ')
			line = strconv.AppendUint(line, uint64(b)+1, 10)
			line = append(line, ':')
			line = strconv.AppendFloat(line, float64(v.Value[j]), 'g', -1, 32)
		}
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// ChunkText splits text at line boundaries into pieces of about target
// bytes (a piece ends at the first line break at or after target; a single
// longer line stays whole). Blank-only pieces are dropped. target <= 0
// returns text as one piece.
func ChunkText(text string, target int) []string {
	if target <= 0 || len(text) <= target {
		if strings.TrimSpace(text) == "" {
			return nil
		}
		return []string{text}
	}
	var out []string
	for len(text) > 0 {
		end := len(text)
		if len(text) > target {
			if i := strings.IndexByte(text[target:], '\n'); i >= 0 {
				end = target + i + 1
			}
		}
		if piece := text[:end]; strings.TrimSpace(piece) != "" {
			out = append(out, piece)
		}
		text = text[end:]
	}
	return out
}
