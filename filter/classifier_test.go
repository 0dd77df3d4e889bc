package filter

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

var (
	proseWords = strings.Fields(`the a of and to in that it was he she they his her for with as on at by
from this which be have had were are is said would could one all there their time people year way day man
woman world life hand part child eye place work week case point government company number group problem fact
river mountain history king city village church war music story letter house garden morning evening light
water found made took came went knew thought began seemed became left told asked turned called`)
	crawlWords = strings.Fields(`home login cart sign up menu search contact about privacy terms cookies
shop now free shipping price sale buy click here share tweet like follow subscribe newsletter copyright all
rights reserved posted by admin comments reply views download pdf mp3 video hd online casino bonus best cheap
deals offer 2016 2017 2018 size color add to wishlist next prev page skip navigation`)
)

// genDoc writes a synthetic document: prose sentences for positives, menu
// and listing lines for negatives, each with some of the other's words.
func genDoc(r *rand.Rand, positive bool) string {
	var b strings.Builder
	for line := 0; line < 8+r.IntN(10); line++ {
		if positive {
			for s := 0; s < 2+r.IntN(3); s++ {
				n := 6 + r.IntN(12)
				for i := 0; i < n; i++ {
					w := proseWords[r.IntN(len(proseWords))]
					if r.IntN(20) == 0 {
						w = crawlWords[r.IntN(len(crawlWords))]
					}
					if i == 0 {
						w = strings.ToUpper(w[:1]) + w[1:]
					}
					b.WriteString(w)
					if i < n-1 {
						b.WriteByte(' ')
					}
				}
				b.WriteString(". ")
			}
		} else {
			for i := 0; i < 3+r.IntN(6); i++ {
				w := crawlWords[r.IntN(len(crawlWords))]
				if r.IntN(6) == 0 {
					w = proseWords[r.IntN(len(proseWords))]
				}
				b.WriteString(w)
				b.WriteString([]string{" | ", " ", " » ", " - "}[r.IntN(4)])
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func genExamples(n int, seed uint64) []Example {
	r := rand.New(rand.NewPCG(seed, 1))
	ex := make([]Example, n)
	for i := range ex {
		pos := i%3 != 0
		ex[i] = Example{ID: fmt.Sprintf("doc-%d", i), Text: genDoc(r, pos), Positive: pos}
	}
	return ex
}

func TestTrainGenerated(t *testing.T) {
	ex := genExamples(600, 7)
	opt := TrainOptions{Bits: 16}
	res, err := Train(context.Background(), ex, opt)
	if err != nil {
		t.Fatal(err)
	}
	if res.Test.AUC < 0.95 || res.Test.N < 60 {
		t.Errorf("held-out metrics %+v, want AUC >= 0.95", res.Test)
	}
	// Deterministic: the same examples give the same model bytes.
	res2, err := Train(context.Background(), ex, opt)
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := res.Model.MarshalBinary()
	b2, _ := res2.Model.MarshalBinary()
	if !bytes.Equal(b1, b2) {
		t.Error("two trainings on the same data differ")
	}
	// Score agrees with ScoreVector on the exported features.
	for _, e := range ex[:20] {
		a, b := res.Model.Score(e.Text), res.Model.ScoreVector(Featurize(e.Text, 16, true))
		if math.Abs(a-b) > 1e-5 || a < 0 || a > 1 {
			t.Errorf("Score %v, ScoreVector %v", a, b)
		}
	}
	// An empty held-out split leaves the AUC undefined, not an error.
	res3, err := Train(context.Background(), ex, TrainOptions{Bits: 12, HoldOut: 1e-9})
	if err != nil || res3.Test.N != 0 || !math.IsNaN(res3.Test.AUC) || !strings.Contains(string(res3.Model.Meta), `"test":{"n":0`) {
		t.Errorf("empty hold-out: %v %+v %s", err, res3.Test, res3.Model.Meta)
	}
	// One class only is an error, not a crash.
	if _, err := Train(context.Background(), ex[1:3], opt); err == nil {
		t.Error("training on positives only: want an error")
	}
}

func TestModelFile(t *testing.T) {
	res, err := Train(context.Background(), genExamples(200, 3), TrainOptions{Bits: 12})
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/q.model"
	if err := SaveModel(path, res.Model); err != nil {
		t.Fatal(err)
	}
	m, err := LoadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	text := genDoc(rand.New(rand.NewPCG(1, 2)), true)
	if m.Score(text) != res.Model.Score(text) || m.Bits != 12 || !m.Bigrams || string(m.Meta) != string(res.Model.Meta) {
		t.Error("loaded model differs")
	}
	data, _ := res.Model.MarshalBinary()
	bad := func(name string, mutate func([]byte) []byte, want string) {
		d := mutate(append([]byte(nil), data...))
		if _, err := UnmarshalModel(d); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, want)
		}
	}
	bad("magic", func(d []byte) []byte { d[0] = 'X'; return d }, "magic")
	bad("version", func(d []byte) []byte { d[8] = 9; return d }, "version 9")
	bad("truncated", func(d []byte) []byte { return d[:len(d)-100] }, "truncated")
	bad("flipped weight", func(d []byte) []byte { d[len(d)-50] ^= 1; return d }, "checksum")
	bad("empty", func(d []byte) []byte { return nil }, "magic")
}

func TestKeepPolicies(t *testing.T) {
	for _, s := range []string{"pareto", "pareto:0", "pareto:-1", "threshold:2", "median:3", "pareto:x"} {
		if _, err := ParseKeep(s); err == nil {
			t.Errorf("ParseKeep(%q): want an error", s)
		}
	}
	th, _ := ParseKeep("threshold:0.5")
	if r, _ := th.Decide("a", 0.5); r != "" {
		t.Error("threshold: score equal to X must be kept")
	}
	if r, v := th.Decide("a", 0.4999); r != QualityThreshold || v != "0.4999" {
		t.Errorf("threshold: got %q %q", r, v)
	}
	// Pareto(alpha) as numpy's Lomax: P(draw > x) = (1+x)^-alpha, so a
	// document with score s survives with probability (2-s)^-alpha.
	p, _ := ParseKeep("pareto:9")
	for _, s := range []float64{0.2, 0.5, 0.8, 0.95} {
		kept, n := 0, 40000
		for i := 0; i < n; i++ {
			if r, _ := p.Decide(fmt.Sprintf("id-%d", i), s); r == "" {
				kept++
			}
		}
		want := math.Pow(2-s, -9)
		got := float64(kept) / float64(n)
		if sd := math.Sqrt(want * (1 - want) / float64(n)); math.Abs(got-want) > 5*sd+1e-4 {
			t.Errorf("pareto:9 at score %.2f kept %.4f, want %.4f", s, got, want)
		}
	}
	if r, _ := p.Decide("x", 1); r != "" {
		t.Error("score 1 must always be kept by pareto")
	}
	// The draw depends on the id and seed only.
	if Uniform("doc-1", 0) != Uniform("doc-1", 0) || Uniform("doc-1", 0) == Uniform("doc-1", 1) {
		t.Error("Uniform is not a function of id and seed")
	}
}

func TestChunkText(t *testing.T) {
	text := strings.Repeat("line of text\n", 1000)
	chunks := ChunkText(text, 2000)
	if strings.Join(chunks, "") != text {
		t.Fatal("chunks do not reassemble the text")
	}
	for _, c := range chunks[:len(chunks)-1] {
		if len(c) < 2000 || len(c) > 2013 || !strings.HasSuffix(c, "\n") {
			t.Errorf("chunk of %d bytes", len(c))
		}
	}
	if ChunkText("  \n ", 10) != nil || len(ChunkText("short", 0)) != 1 {
		t.Error("blank or unchunked input")
	}
}

func TestMetrics(t *testing.T) {
	// Hand-checked: positives 0.9, 0.4; negatives 0.6, 0.1, 0.4 (tie with a positive).
	m := ComputeMetrics([]float64{0.9, 0.4, 0.6, 0.1, 0.4}, []bool{true, true, false, false, false})
	// Pairs (pos > neg): 0.9 beats 3; 0.4 beats 0.1, ties 0.4 (half), loses to 0.6 -> 4.5/6.
	if math.Abs(m.AUC-0.75) > 1e-12 || m.Accuracy != 0.6 || m.Precision != 0.5 || m.Recall != 0.5 {
		t.Errorf("%+v", m)
	}
}
