package fasttext

import (
	"bufio"
	"errors"
	"io"
	"math"
)

// Prediction is one label with its probability.
type Prediction struct {
	// Label is the label as stored in the model, prefix included
	// ("__label__en").
	Label string
	// Prob is the probability as fastText reports it: the model's
	// probability plus 1e-5 (fastText ranks by log(p + 1e-5) and reports
	// exp of that), in float32.
	Prob float32
}

// treeNode is a node of the hierarchical-softmax Huffman tree.
type treeNode struct {
	parent, left, right int32
	count               int64
	binary              bool
}

// buildTree builds fastText's Huffman tree over labels whose counts are in
// decreasing order (as the dictionary stores them): leaves 0..n-1, inner
// nodes n..2n-2, the root last.
func buildTree(counts []int64) []treeNode {
	osz := int32(len(counts))
	tree := make([]treeNode, 2*osz-1)
	for i := range tree {
		tree[i] = treeNode{parent: -1, left: -1, right: -1, count: 1e15}
	}
	for i := range osz {
		tree[i].count = counts[i]
	}
	leaf, node := osz-1, osz
	for i := osz; i < 2*osz-1; i++ {
		var mini [2]int32
		for j := range mini {
			if leaf >= 0 && tree[leaf].count < tree[node].count {
				mini[j] = leaf
				leaf--
			} else {
				mini[j] = node
				node++
			}
		}
		tree[i].left, tree[i].right = mini[0], mini[1]
		tree[i].count = tree[mini[0]].count + tree[mini[1]].count
		tree[mini[0]].parent, tree[mini[1]].parent = i, i
		tree[mini[1]].binary = true
	}
	return tree
}

// stdLog is fastText's log(x + 1e-5), computed in double and stored as
// float32.
func stdLog(x float32) float32 { return float32(math.Log(float64(x) + 1e-5)) }

// The sigmoid lookup table fastText uses for the sigmoid losses (ova, ns):
// 513 values over [-8, 8].
const (
	sigmoidTableSize = 512
	maxSigmoid       = 8
)

var sigmoidTable = func() []float32 {
	t := make([]float32, sigmoidTableSize+1)
	for i := range t {
		x := float32(i*2*maxSigmoid)/sigmoidTableSize - maxSigmoid
		t[i] = float32(1.0 / (1.0 + math.Exp(-float64(x))))
	}
	return t
}()

func tableSigmoid(x float32) float32 {
	if !(x >= -maxSigmoid) { // NaN too: Read refuses weights that make one, but never index with it
		return 0
	}
	if x > maxSigmoid {
		return 1
	}
	return sigmoidTable[int64((x+maxSigmoid)*sigmoidTableSize/maxSigmoid/2)]
}

// scored is a candidate: log-probability and label id.
type scored struct {
	score float32
	label int32
}

// topK keeps the k best candidates, best first. It is the selection
// fastText makes with its heap (same set for any scores without ties).
type topK struct {
	k    int
	list []scored
}

func (t *topK) full() bool { return len(t.list) == t.k }

// worst is the smallest kept score (valid when full).
func (t *topK) worst() float32 { return t.list[len(t.list)-1].score }

func (t *topK) push(s scored) {
	i := len(t.list)
	if i == t.k {
		i--
	} else {
		t.list = append(t.list, s)
	}
	for i > 0 && t.list[i-1].score < s.score {
		t.list[i] = t.list[i-1]
		i--
	}
	t.list[i] = s
}

// state is one prediction's scratch space.
type state struct {
	line   lineState
	hidden []float32
	output []float32
	top    topK
}

// ErrNotSupervised is returned when predicting with an unsupervised
// (word-vector) model.
var ErrNotSupervised = errors.New("fasttext: the model is not supervised: it has no labels to predict")

func (m *Model) getState() *state {
	if s, ok := m.states.Get().(*state); ok {
		return s
	}
	return &state{hidden: make([]float32, m.Args.Dim), output: make([]float32, m.output.rows())}
}

// PredictLine predicts the k most probable labels of one line of text with
// probability at least threshold, exactly as fastText's predict does for
// one line of its input: the text up to its first newline, which adds the
// end-of-line token (text without a newline is taken as one line ended by
// a newline, as fastText's Python and WebAssembly bindings do). k < 1
// means all labels. Labels come best first.
func (m *Model) PredictLine(text string, k int, threshold float32) ([]Prediction, error) {
	return m.predict(text, k, threshold, false)
}

// Predict is PredictLine for text of any number of lines: newlines
// separate words like spaces (as when callers replace them with spaces,
// which is what datatrove, FineWeb and cc_net do before calling fastText).
func (m *Model) Predict(text string, k int, threshold float32) ([]Prediction, error) {
	return m.predict(text, k, threshold, true)
}

func (m *Model) predict(text string, k int, threshold float32, newlineIsSpace bool) ([]Prediction, error) {
	if m.Args.Model != ModelSupervised {
		return nil, ErrNotSupervised
	}
	s := m.getState()
	defer m.states.Put(s)
	if !newlineIsSpace && !containsNewline(text) {
		newlineIsSpace = true // one line, ended by its newline
	}
	m.dict.line(&s.line, text, newlineIsSpace, true)
	return m.predictions(s, k, threshold, nil), nil
}

func (m *Model) predictions(s *state, k int, threshold float32, out []Prediction) []Prediction {
	for _, b := range m.rank(s, k, threshold) {
		out = append(out, Prediction{Label: m.dict.Label(int(b.label)), Prob: float32(math.Exp(float64(b.score)))})
	}
	return out
}

// PredictLines predicts every line of r as fastText's predict command
// does, calling fn with each line's predictions (empty when no label
// reaches the threshold) in order. As in fastText, a last line without a
// newline gets no end-of-line token. The predictions slice is reused
// between calls. Memory is bounded by the longest line.
func (m *Model) PredictLines(r io.Reader, k int, threshold float32, fn func([]Prediction) error) error {
	if m.Args.Model != ModelSupervised {
		return ErrNotSupervised
	}
	s := m.getState()
	defer m.states.Put(s)
	br := bufio.NewReaderSize(r, 1<<16)
	var long []byte
	var preds []Prediction
	for {
		chunk, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long, chunk...)
			continue
		}
		if err != nil && err != io.EOF {
			return err
		}
		line := chunk
		if len(long) > 0 {
			long = append(long, chunk...)
			line = long
		}
		if len(line) > 0 {
			rest := string(line)
			for len(rest) > 0 {
				// A literal "</s>" ends a line in fastText, so one input
				// line can be several predictions.
				rest = m.dict.line(&s.line, rest, false, false)
				preds = m.predictions(s, k, threshold, preds[:0])
				if err := fn(preds); err != nil {
					return err
				}
			}
		}
		long = long[:0]
		if err == io.EOF {
			return nil
		}
	}
}

func containsNewline(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return true
		}
	}
	return false
}

// rank computes the hidden vector of s.line.ids and returns the top k.
func (m *Model) rank(s *state, k int, threshold float32) []scored {
	ids := s.line.ids
	if len(ids) == 0 {
		return nil
	}
	nl := int(m.dict.nlabels)
	if k < 1 || k > nl {
		k = nl
	}
	h := s.hidden
	clear(h)
	for _, id := range ids {
		m.input.addRow(h, id)
	}
	inv := float32(1.0 / float64(len(ids)))
	for i := range h {
		h[i] *= inv
	}
	s.top = topK{k: k, list: s.top.list[:0]}
	if m.Args.Loss == LossHS {
		m.dfs(s, threshold, int32(len(m.tree)-1), 0)
		return s.top.list
	}
	out := s.output
	for i := range out {
		out[i] = m.output.dotRow(h, int32(i))
	}
	if m.Args.Loss == LossSoftmax {
		mx := out[0]
		for _, v := range out {
			mx = max(mx, v)
		}
		var z float32
		for i, v := range out {
			out[i] = float32(math.Exp(float64(v - mx)))
			z += out[i]
		}
		for i := range out {
			out[i] /= z
		}
	} else {
		for i, v := range out {
			out[i] = tableSigmoid(v)
		}
	}
	for i, p := range out {
		if p < threshold {
			continue
		}
		ls := stdLog(p)
		if s.top.full() && ls < s.top.worst() {
			continue
		}
		s.top.push(scored{ls, int32(i)})
	}
	return s.top.list
}

// dfs walks the Huffman tree as fastText does, pruning a branch once its
// log-probability falls below the threshold or the k-th best so far.
func (m *Model) dfs(s *state, threshold float32, node int32, score float32) {
	if score < stdLog(threshold) {
		return
	}
	if s.top.full() && score < s.top.worst() {
		return
	}
	n := &m.tree[node]
	if n.left == -1 && n.right == -1 {
		s.top.push(scored{score, node})
		return
	}
	f := m.output.dotRow(s.hidden, node-int32(m.dict.nlabels))
	// fastText: f = 1. / (1 + std::exp(-f)), with exp and the sum in float.
	f = float32(1.0 / float64(1+float32(math.Exp(-float64(f)))))
	m.dfs(s, threshold, n.left, score+stdLog(float32(1.0-float64(f))))
	m.dfs(s, threshold, n.right, score+stdLog(f))
}
