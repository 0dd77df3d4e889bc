package trainer

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Finite-difference gradient checks in float32. Each op's output is reduced
// to L = Σ out·r for a fixed random r (summed in float64), the analytic
// gradient comes from the op's backward with dout = r, and the numeric one
// from central differences with step h = 1e-2 at a sample of coordinates.
// With float32 arithmetic the numeric side carries rounding noise of about
// 1e-4 relative on these sizes, so the stated tolerance is
// |analytic - numeric| <= 2e-3 * max(|analytic|, |numeric|) + 2e-4.

const (
	fdStep   = 1e-2
	fdRelTol = 2e-3
	fdAbsTol = 2e-4
)

func randVec(r *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * scale)
	}
	return v
}

func dot64(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// fdCheck perturbs up to 40 coordinates of x and compares
// (L(x+h) - L(x-h)) / 2h with grad.
func fdCheck(t *testing.T, name string, x, grad []float32, loss func() float64) {
	fdCheckStep(t, name, x, grad, loss, fdStep)
}

func fdCheckStep(t *testing.T, name string, x, grad []float32, loss func() float64, h float32) {
	t.Helper()
	r := rand.New(rand.NewPCG(uint64(len(x)), 3))
	n := min(40, len(x))
	bad := 0
	for k := range n {
		i := k
		if len(x) > n {
			i = r.IntN(len(x))
		}
		old := x[i]
		x[i] = old + h
		lp := loss()
		x[i] = old - h
		lm := loss()
		x[i] = old
		num := (lp - lm) / (2 * float64(h))
		ana := float64(grad[i])
		if math.Abs(ana-num) > fdRelTol*max(math.Abs(ana), math.Abs(num))+fdAbsTol {
			bad++
			if bad <= 3 {
				t.Errorf("%s[%d]: analytic %.6g, numeric %.6g", name, i, ana, num)
			}
		}
	}
}

func TestGradMatmul(t *testing.T) {
	be := NewCPU(2)
	r := rand.New(rand.NewPCG(1, 1))
	BT, C, OC := 6, 5, 7
	inp, w, b := randVec(r, BT*C, 1), randVec(r, OC*C, 1), randVec(r, OC, 1)
	rr := randVec(r, BT*OC, 1)
	out := make([]float32, BT*OC)
	loss := func() float64 { be.MatmulForward(out, inp, w, b, BT, C, OC); return dot64(out, rr) }
	dinp, dw, db := make([]float32, BT*C), make([]float32, OC*C), make([]float32, OC)
	be.MatmulBackward(dinp, dw, db, rr, inp, w, BT, C, OC)
	fdCheck(t, "matmul.inp", inp, dinp, loss)
	fdCheck(t, "matmul.weight", w, dw, loss)
	fdCheck(t, "matmul.bias", b, db, loss)
}

func TestGradLayerNorm(t *testing.T) {
	be := NewCPU(2)
	r := rand.New(rand.NewPCG(1, 2))
	BT, C := 5, 8
	inp, w, b := randVec(r, BT*C, 1), randVec(r, C, 1), randVec(r, C, 1)
	rr := randVec(r, BT*C, 1)
	out, mean, rstd := make([]float32, BT*C), make([]float32, BT), make([]float32, BT)
	loss := func() float64 { be.LayerNormForward(out, mean, rstd, inp, w, b, BT, C); return dot64(out, rr) }
	loss()
	dinp, dw, db := make([]float32, BT*C), make([]float32, C), make([]float32, C)
	be.LayerNormBackward(dinp, dw, db, rr, inp, w, mean, rstd, BT, C)
	fdCheck(t, "layernorm.inp", inp, dinp, loss)
	fdCheck(t, "layernorm.weight", w, dw, loss)
	fdCheck(t, "layernorm.bias", b, db, loss)
}

func TestGradAttention(t *testing.T) {
	be := NewCPU(2)
	r := rand.New(rand.NewPCG(1, 3))
	B, T, C, NH := 2, 5, 8, 2
	qkv := randVec(r, B*T*3*C, 1)
	rr := randVec(r, B*T*C, 1)
	out, att := make([]float32, B*T*C), make([]float32, B*NH*T*T)
	loss := func() float64 { be.AttentionForward(out, att, qkv, B, T, C, NH); return dot64(out, rr) }
	loss()
	dqkv, datt := make([]float32, len(qkv)), make([]float32, len(att))
	be.AttentionBackward(dqkv, datt, rr, qkv, att, B, T, C, NH)
	fdCheck(t, "attention.qkv", qkv, dqkv, loss)
	// Causality: the output at position 0 must not depend on later keys.
	loss()
	o0 := out[0]
	qkv[(T-1)*3*C+C] += 5
	loss()
	if out[0] != o0 {
		t.Error("attention output at t=0 changed with the key at t=T-1")
	}
}

func TestGradGelu(t *testing.T) {
	be := NewCPU(2)
	r := rand.New(rand.NewPCG(1, 4))
	x := randVec(r, 64, 2)
	rr := randVec(r, 64, 1)
	out := make([]float32, 64)
	loss := func() float64 { be.GeluForward(out, x); return dot64(out, rr) }
	dx := make([]float32, 64)
	be.GeluBackward(dx, x, rr)
	fdCheck(t, "gelu", x, dx, loss)
}

func TestGradSoftmaxCrossEntropy(t *testing.T) {
	be := NewCPU(2)
	r := rand.New(rand.NewPCG(1, 5))
	BT, V := 4, 11
	logits := randVec(r, BT*V, 2)
	targets := []uint32{0, 3, 10, 7}
	probs, losses := make([]float32, BT*V), make([]float32, BT)
	loss := func() float64 {
		be.SoftmaxCrossEntropyForward(losses, probs, logits, targets, BT, V)
		var s float64
		for _, l := range losses {
			s += float64(l)
		}
		return s / float64(BT)
	}
	loss()
	d := make([]float32, BT*V)
	be.SoftmaxCrossEntropyBackward(d, probs, targets, 1/float32(BT), BT, V)
	fdCheck(t, "crossentropy.logits", logits, d, loss)
}

func TestGradEncoderAndResidual(t *testing.T) {
	be := NewCPU(2)
	r := rand.New(rand.NewPCG(1, 6))
	B, T, C, V := 2, 3, 4, 5
	wte, wpe := randVec(r, V*C, 1), randVec(r, T*C, 1)
	inp := []uint32{1, 1, 4, 0, 1, 2} // repeated tokens accumulate
	rr := randVec(r, B*T*C, 1)
	out := make([]float32, B*T*C)
	loss := func() float64 { be.EncoderForward(out, inp, wte, wpe, B, T, C); return dot64(out, rr) }
	dwte, dwpe := make([]float32, V*C), make([]float32, T*C)
	be.EncoderBackward(dwte, dwpe, rr, inp, B, T, C)
	fdCheck(t, "encoder.wte", wte, dwte, loss)
	fdCheck(t, "encoder.wpe", wpe, dwpe, loss)
}

// TestGradWholeModel checks the model's gradient of the mean loss against
// finite differences at sampled coordinates of every parameter tensor.
func TestGradWholeModel(t *testing.T) {
	cfg := Config{Layers: 2, Heads: 2, Width: 8, Context: 6, Vocab: 10}
	m, err := NewModel(cfg, NewCPU(2), 5, 2, 6)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 7))
	for i := range m.Params.Flat {
		m.Params.Flat[i] += float32(r.NormFloat64() * 0.3) // away from the tiny GPT-2 init
	}
	in := []uint32{1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2}
	tg := []uint32{2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3}
	loss := func() float64 {
		l, err := m.Forward(in, tg, 2, 6)
		if err != nil {
			t.Fatal(err)
		}
		return float64(l)
	}
	loss()
	m.ZeroGrad()
	if err := m.Backward(1); err != nil {
		t.Fatal(err)
	}
	grads := append([]float32(nil), m.Grads.Flat...)
	off := 0
	for i, p := range m.Params.T {
		// A smaller step: the whole model curves more than one op.
		fdCheckStep(t, ParamNames[i], p, grads[off:off+len(p)], loss, 2e-3)
		off += len(p)
	}
}

func TestExpfTanhfAccuracy(t *testing.T) {
	for x := float32(-87); x <= 88; x += 0.37 {
		got, want := float64(expf(x)), math.Exp(float64(x))
		if math.Abs(got-want) > 4e-7*want {
			t.Fatalf("expf(%g) = %g, want %g", x, got, want)
		}
	}
	for x := float32(-12); x <= 12; x += 0.013 {
		if d := math.Abs(float64(tanhf(x)) - math.Tanh(float64(x))); d > 3e-7 {
			t.Fatalf("tanhf(%g) off by %g", x, d)
		}
	}
}

// TestAttentionBlocksMatchNaive runs the blocked attention with T spanning
// several blocks (and a partial last one) against a direct float64
// implementation of causal attention and its backward.
func TestAttentionBlocksMatchNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	B, T, C, NH := 2, 2*attBlock+19, 16, 2
	hs := C / NH
	qkv := randVec(r, B*T*3*C, 1)
	dout := randVec(r, B*T*C, 1)
	out, att := make([]float32, B*T*C), make([]float32, B*NH*T*T)
	dqkv, datt := make([]float32, len(qkv)), make([]float32, len(att))
	for _, be := range []*CPU{NewCPU(2), NewPureGo(1)} {
		clear(dqkv)
		be.AttentionForward(out, att, qkv, B, T, C, NH)
		be.AttentionBackward(dqkv, datt, dout, qkv, att, B, T, C, NH)
		wantOut := make([]float64, len(out))
		wantD := make([]float64, len(qkv))
		sc := 1 / math.Sqrt(float64(hs))
		at := func(bi, t, part, h, d int) int { return (bi*T+t)*3*C + part*C + h*hs + d }
		for bi := range B {
			for h := range NH {
				for i := range T {
					p := make([]float64, i+1)
					mx := math.Inf(-1)
					for j := 0; j <= i; j++ {
						var s float64
						for d := range hs {
							s += float64(qkv[at(bi, i, 0, h, d)]) * float64(qkv[at(bi, j, 1, h, d)])
						}
						p[j] = s * sc
						mx = max(mx, p[j])
					}
					var z float64
					for j := range p {
						p[j] = math.Exp(p[j] - mx)
						z += p[j]
					}
					dp := make([]float64, i+1)
					var dot float64
					for j := range p {
						p[j] /= z
						for d := range hs {
							do := float64(dout[(bi*T+i)*C+h*hs+d])
							wantOut[(bi*T+i)*C+h*hs+d] += p[j] * float64(qkv[at(bi, j, 2, h, d)])
							wantD[at(bi, j, 2, h, d)] += p[j] * do
							dp[j] += do * float64(qkv[at(bi, j, 2, h, d)])
						}
						dot += p[j] * dp[j]
					}
					for j := range p {
						ds := p[j] * (dp[j] - dot) * sc
						for d := range hs {
							wantD[at(bi, i, 0, h, d)] += ds * float64(qkv[at(bi, j, 1, h, d)])
							wantD[at(bi, j, 1, h, d)] += ds * float64(qkv[at(bi, i, 0, h, d)])
						}
					}
				}
			}
		}
		cmp := func(name string, got []float32, want []float64) {
			var d, m float64
			for i := range want {
				d = max(d, math.Abs(float64(got[i])-want[i]))
				m = max(m, math.Abs(want[i]))
			}
			if d > 1e-5*m {
				t.Errorf("%s %s: max diff %.3g of max %.3g", be.Name(), name, d, m)
			}
		}
		cmp("out", out, wantOut)
		cmp("dqkv", dqkv, wantD)
	}
}
