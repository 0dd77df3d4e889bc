package ablate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/smelt-dev/smelt/shards"
	"gopkg.in/yaml.v3"
)

// SearchOptions configures a mixture search (RegMix, Liu et al. 2024).
type SearchOptions struct {
	// Proxies is K, the number of proxy models trained on random weight
	// vectors (at least the number of regression terms + 2; 0: twice the
	// terms); Seed draws
	// the vectors and the candidates.
	Proxies int
	Seed    uint64
	// Ridge is the regression's L2 penalty (0: 1e-4).
	Ridge float64
	// Candidates is how many random weight vectors the fitted regression
	// ranks (0: 100,000); the proposal is the mean of the TopK best (0: 100),
	// which RegMix does too, so one lucky corner of the simplex does not
	// decide.
	Candidates, TopK int
}

// Proxy is one proxy run of the search.
type Proxy struct {
	Weights []float64 `json:"weights"`
	// Loss is the mean held-out loss (nats per token) over the eval sets.
	Loss float64 `json:"loss"`
}

// Validation is one weight vector trained with every seed.
type Validation struct {
	Weights []float64 `json:"weights"`
	// Loss is the mean over seeds of the mean held-out loss over the eval
	// sets; Min and Max the best and worst seed.
	Loss float64 `json:"loss"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	// Predicted is the regression's prediction for these weights.
	Predicted float64 `json:"predicted"`
}

// SearchResult is mixsearch.json.
type SearchResult struct {
	Sources []string  `json:"sources"`
	Tokens  []int64   `json:"tokens"`
	Proxies []Proxy   `json:"proxies"`
	Terms   []string  `json:"terms"`
	Coef    []float64 `json:"coef"`
	// FitRMSE is the regression's error on the proxies (nats).
	FitRMSE  float64    `json:"fit_rmse"`
	Proposed Validation `json:"proposed"`
	Uniform  Validation `json:"uniform"`
	// MixFile is the proposed weights as a smelt mix file (paths are the
	// prepared token directories); Blend the Megatron --data-path blend
	// string (weight, then each source's dataset prefix as smelt export
	// --format megatron names it: the source name).
	MixFile string `json:"mix_file"`
	Blend   string `json:"blend"`
}

// MixSearch prepares the sources (decontaminated against cfg.Evals,
// tokenized), trains opt.Proxies proxy models (cfg's model, budget and
// first seed) on Dirichlet(1,...,1) draws of source weights, fits
// held-out loss = sum_i b_i w_i + sum_{i<j} b_ij w_i w_j by ridge least
// squares, proposes the mean of the best-predicted candidates, and trains
// fresh models on the proposal and on uniform weights with every seed of
// cfg. It writes mixsearch.json, mix.yaml (the proposal) and blend.txt
// into cfg.Out.
//
// Why this regression: with weights on the simplex an intercept is the
// sum of the linear terms, so none is fitted; the pairwise terms let the
// fit bend (diminishing returns of one source, two sources that only help
// together), which a linear fit cannot, with n(n+1)/2 coefficients, few
// enough to fit from tens of proxies. RegMix fits linear models and
// LightGBM; a gradient-boosted tree needs hundreds of runs and a library,
// this needs a 6x6 (3 sources) normal equation solved by hand below.
func MixSearch(ctx context.Context, cfg Config, sources []Source, opt SearchOptions) (*SearchResult, error) {
	n := len(sources)
	if n < 2 {
		return nil, errors.New("mixsearch: need at least two sources")
	}
	terms := n * (n + 1) / 2
	if opt.Proxies == 0 {
		opt.Proxies = 2 * terms
	}
	if opt.Proxies < terms+2 {
		return nil, fmt.Errorf("mixsearch: %d proxies for %d regression terms: want at least %d", opt.Proxies, terms, terms+2)
	}
	if opt.Ridge == 0 {
		opt.Ridge = 1e-4
	}
	if opt.Candidates == 0 {
		opt.Candidates = 100000
	}
	if opt.TopK == 0 {
		opt.TopK = 100
	}
	s, err := newSession(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	defer s.close()
	res := &SearchResult{}
	var prep []*Prepared
	for _, src := range sources {
		p, err := s.prepare(ctx, src)
		if err != nil {
			return nil, err
		}
		prep = append(prep, p)
		res.Sources = append(res.Sources, src.Name)
		res.Tokens = append(res.Tokens, p.Tokens)
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x7e6))
	for k := 0; k < opt.Proxies; k++ {
		res.Proxies = append(res.Proxies, Proxy{Weights: dirichlet(rng, n)})
	}
	// Proxies train Parallel at a time.
	var jobs []trainJob
	for k := range res.Proxies {
		jobs = append(jobs, trainJob{filepath.Join(cfg.Out, "proxies", fmt.Sprintf("proxy-%03d", k)), res.Proxies[k].Weights, cfg.Seeds[0], &res.Proxies[k].Loss})
	}
	if err := s.runAll(ctx, prep, jobs); err != nil {
		return nil, err
	}
	X := make([][]float64, opt.Proxies)
	y := make([]float64, opt.Proxies)
	for k, p := range res.Proxies {
		X[k], y[k] = features(p.Weights), p.Loss
	}
	res.Terms = termNames(res.Sources)
	if res.Coef, err = ridge(X, y, opt.Ridge); err != nil {
		return nil, err
	}
	for k := range X {
		d := dot(res.Coef, X[k]) - y[k]
		res.FitRMSE += d * d / float64(len(X))
	}
	res.FitRMSE = math.Sqrt(res.FitRMSE)
	// Rank random candidates by the fit; propose the mean of the best.
	type cand struct {
		w    []float64
		pred float64
	}
	cands := make([]cand, opt.Candidates)
	for i := range cands {
		w := dirichlet(rng, n)
		cands[i] = cand{w, dot(res.Coef, features(w))}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].pred < cands[j].pred })
	prop := make([]float64, n)
	top := min(opt.TopK, len(cands))
	for _, c := range cands[:top] {
		for i := range prop {
			prop[i] += c.w[i] / float64(top)
		}
	}
	uni := make([]float64, n)
	for i := range uni {
		uni[i] = 1 / float64(n)
	}
	res.Proposed = Validation{Weights: prop, Predicted: dot(res.Coef, features(prop))}
	res.Uniform = Validation{Weights: uni, Predicted: dot(res.Coef, features(uni))}
	var vjobs []trainJob
	losses := map[string][]float64{}
	for _, v := range []struct {
		name string
		w    []float64
	}{{"proposed", prop}, {"uniform", uni}} {
		losses[v.name] = make([]float64, len(cfg.Seeds))
		for si, seed := range cfg.Seeds {
			vjobs = append(vjobs, trainJob{filepath.Join(cfg.Out, "validate", v.name, fmt.Sprintf("seed-%d", seed)), v.w, seed, &losses[v.name][si]})
		}
	}
	if err := s.runAll(ctx, prep, vjobs); err != nil {
		return nil, err
	}
	summ := func(v *Validation, ls []float64) {
		v.Min, v.Max = math.Inf(1), math.Inf(-1)
		for _, l := range ls {
			v.Loss += l / float64(len(ls))
			v.Min, v.Max = min(v.Min, l), max(v.Max, l)
		}
	}
	summ(&res.Proposed, losses["proposed"])
	summ(&res.Uniform, losses["uniform"])
	var mf shards.MixFile
	var blend []string
	for i, p := range prep {
		rel, err := filepath.Rel(cfg.Out, p.TokenDir)
		if err != nil {
			return nil, err
		}
		if round(prop[i]) > 0 {
			mf.Sources = append(mf.Sources, shards.MixFileSource{Name: p.Name, Path: rel, Weight: round(prop[i])})
		}
		blend = append(blend, strconv.FormatFloat(round(prop[i]), 'g', 6, 64), p.Name)
	}
	data, err := yaml.Marshal(&mf)
	if err != nil {
		return nil, err
	}
	res.MixFile = filepath.Join(cfg.Out, "mix.yaml")
	res.Blend = strings.Join(blend, " ")
	if err := shards.WriteFileAtomic(res.MixFile, data); err != nil {
		return nil, err
	}
	if err := shards.WriteFileAtomic(filepath.Join(cfg.Out, "blend.txt"), []byte(res.Blend+"\n")); err != nil {
		return nil, err
	}
	return res, writeJSON(filepath.Join(cfg.Out, "mixsearch.json"), res)
}

func round(w float64) float64 { return math.Round(w*1e4) / 1e4 }

// trainJob is one model to train and score: its mean held-out loss goes
// to out.
type trainJob struct {
	dir  string
	w    []float64
	seed uint64
	out  *float64
}

// runAll trains the jobs, cfg.Parallel at a time.
func (s *session) runAll(ctx context.Context, prep []*Prepared, jobs []trainJob) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, s.cfg.Parallel)
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func(j trainJob) {
			defer wg.Done()
			defer func() { <-sem }()
			r, err := s.trainOne(ctx, j.dir, prep, j.w, j.seed)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = fmt.Errorf("mixsearch: %s: %w", j.dir, err)
					cancel()
				}
				return
			}
			var sum float64
			for _, e := range r.Evals {
				sum += e.LossNats / float64(len(r.Evals))
			}
			*j.out = sum
			if s.cfg.Log != nil {
				s.cfg.Log(fmt.Sprintf("%s: weights %s, held-out loss %.4f", filepath.Base(filepath.Dir(j.dir))+"/"+filepath.Base(j.dir), fmtWeights(j.w), sum))
			}
		}(j)
	}
	wg.Wait()
	return first
}

func fmtWeights(w []float64) string {
	parts := make([]string, len(w))
	for i, x := range w {
		parts[i] = strconv.FormatFloat(x, 'f', 3, 64)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// dirichlet draws from the flat Dirichlet(1, ..., 1): normalised
// exponentials (Gamma(1) draws), uniform over the simplex.
func dirichlet(r *rand.Rand, n int) []float64 {
	w := make([]float64, n)
	var sum float64
	for i := range w {
		w[i] = r.ExpFloat64()
		sum += w[i]
	}
	for i := range w {
		w[i] /= sum
	}
	return w
}

// features are the regression's terms: w_i, then w_i w_j for i < j.
func features(w []float64) []float64 {
	f := append([]float64(nil), w...)
	for i := range w {
		for j := i + 1; j < len(w); j++ {
			f = append(f, w[i]*w[j])
		}
	}
	return f
}

func termNames(src []string) []string {
	t := append([]string(nil), src...)
	for i := range src {
		for j := i + 1; j < len(src); j++ {
			t = append(t, src[i]+"*"+src[j])
		}
	}
	return t
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// ridge solves (X'X + lambda I) b = X'y by Cholesky: a few coefficients,
// so a hand-written solver is enough, and it keeps a dependency out.
func ridge(X [][]float64, y []float64, lambda float64) ([]float64, error) {
	p := len(X[0])
	A := make([][]float64, p)
	rhs := make([]float64, p)
	for i := range A {
		A[i] = make([]float64, p)
		for k := range X {
			rhs[i] += X[k][i] * y[k]
			for j := range A[i] {
				A[i][j] += X[k][i] * X[k][j]
			}
		}
		A[i][i] += lambda
	}
	// A = L L'
	L := make([][]float64, p)
	for i := range L {
		L[i] = make([]float64, p)
		for j := 0; j <= i; j++ {
			s := A[i][j]
			for k := 0; k < j; k++ {
				s -= L[i][k] * L[j][k]
			}
			if i == j {
				if s <= 0 {
					return nil, errors.New("mixsearch: regression matrix is not positive definite")
				}
				L[i][i] = math.Sqrt(s)
			} else {
				L[i][j] = s / L[j][j]
			}
		}
	}
	z := make([]float64, p)
	for i := 0; i < p; i++ {
		s := rhs[i]
		for k := 0; k < i; k++ {
			s -= L[i][k] * z[k]
		}
		z[i] = s / L[i][i]
	}
	b := make([]float64, p)
	for i := p - 1; i >= 0; i-- {
		s := z[i]
		for k := i + 1; k < p; k++ {
			s -= L[k][i] * b[k]
		}
		b[i] = s / L[i][i]
	}
	return b, nil
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return shards.WriteFileAtomic(path, append(data, '\n'))
}
