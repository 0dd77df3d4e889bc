package trainer

import (
	"fmt"
	"math/rand/v2"
)

// Model is a GPT-2 with its parameters, gradients and the activations of the
// last forward pass, for batches of up to B sequences of up to T tokens.
type Model struct {
	Config Config
	Params *Tensors
	Grads  *Tensors
	be     Backend

	maxB, maxT int // activation capacity
	b, t       int // shape of the last forward pass
	hasTargets bool
	targets    []uint32
	inputs     []uint32
	a          acts
	g          gradScratch
}

// acts are the forward activations the backward pass reads, per layer where
// the name says so.
type acts struct {
	encoded         []float32 // (BT,C)
	ln1, ln1m, ln1r []float32 // (L,BT,C), (L,BT), (L,BT)
	qkv             []float32 // (L,BT,3C)
	atty            []float32 // (L,BT,C)
	att             []float32 // (L,B,NH,T,T)
	res2            []float32 // (L,BT,C)
	ln2, ln2m, ln2r []float32
	fch, fchGelu    []float32 // (L,BT,4C)
	res3            []float32 // (L,BT,C)
	lnf, lnfm, lnfr []float32 // (BT,C), (BT), (BT)
	logits          []float32 // (BT,V); probabilities after a forward with targets
	losses          []float32 // (BT)
	proj            []float32 // (BT,C) scratch for the two projections
}

// gradScratch are the activation gradients of one layer, reused for all.
type gradScratch struct {
	dres, dln, datty, dlnf []float32 // (BT,C)
	dqkv                   []float32 // (BT,3C)
	datt                   []float32 // (B,NH,T,T)
	dfch, dfchGelu         []float32 // (BT,4C)
}

// NewModel returns a model with GPT-2's initialisation drawn from seed,
// running on be, with activations for batches of up to B sequences of up to
// T tokens (T at most cfg.Context).
func NewModel(cfg Config, be Backend, seed uint64, B, T int) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if B <= 0 || T <= 0 || T > cfg.Context {
		return nil, fmt.Errorf("trainer: batch %dx%d does not fit context %d", B, T, cfg.Context)
	}
	m := &Model{Config: cfg, Params: newTensors(cfg), Grads: newTensors(cfg), be: be, maxB: B, maxT: T}
	initParams(cfg, m.Params, rand.New(rand.NewPCG(seed, 0x5eed)))
	m.alloc()
	return m, nil
}

func (m *Model) alloc() {
	c := m.Config
	BT, C, L, V, NH := m.maxB*m.maxT, c.Width, c.Layers, c.Vocab, c.Heads
	TT := m.maxB * NH * m.maxT * m.maxT
	f := func(n int) []float32 { return make([]float32, n) }
	m.a = acts{
		encoded: f(BT * C),
		ln1:     f(L * BT * C), ln1m: f(L * BT), ln1r: f(L * BT),
		qkv: f(L * BT * 3 * C), atty: f(L * BT * C), att: f(L * TT),
		res2: f(L * BT * C),
		ln2:  f(L * BT * C), ln2m: f(L * BT), ln2r: f(L * BT),
		fch: f(L * BT * 4 * C), fchGelu: f(L * BT * 4 * C),
		res3: f(L * BT * C),
		lnf:  f(BT * C), lnfm: f(BT), lnfr: f(BT),
		logits: f(BT * V), losses: f(BT), proj: f(BT * C),
	}
	m.g = gradScratch{
		dres: f(BT * C), dln: f(BT * C), datty: f(BT * C), dlnf: f(BT * C),
		dqkv: f(BT * 3 * C), datt: f(TT), dfch: f(BT * 4 * C), dfchGelu: f(BT * 4 * C),
	}
}

// Backend is the backend the model runs on.
func (m *Model) Backend() Backend { return m.be }

// Forward runs the model on inputs (B*T token ids). With targets (B*T ids)
// it returns the mean cross-entropy loss and keeps what Backward needs;
// with nil targets it returns 0 and leaves the logits in Logits.
func (m *Model) Forward(inputs, targets []uint32, B, T int) (float32, error) {
	c := m.Config
	if B <= 0 || T <= 0 || B > m.maxB || T > m.maxT {
		return 0, fmt.Errorf("trainer: batch %dx%d exceeds the model's %dx%d", B, T, m.maxB, m.maxT)
	}
	BT := B * T
	if len(inputs) != BT || (targets != nil && len(targets) != BT) {
		return 0, fmt.Errorf("trainer: forward wants %d inputs and targets, got %d and %d", BT, len(inputs), len(targets))
	}
	for i, tok := range inputs {
		if int(tok) >= c.Vocab {
			return 0, fmt.Errorf("trainer: input token %d at position %d is outside the vocabulary of %d", tok, i, c.Vocab)
		}
	}
	for i, tok := range targets {
		if int(tok) >= c.Vocab {
			return 0, fmt.Errorf("trainer: target token %d at position %d is outside the vocabulary of %d", tok, i, c.Vocab)
		}
	}
	m.b, m.t, m.inputs, m.targets, m.hasTargets = B, T, inputs, targets, targets != nil
	C, L, NH, V := c.Width, c.Layers, c.Heads, c.Vocab
	p, a, be := m.Params.T, &m.a, m.be
	TT := B * NH * T * T

	be.EncoderForward(a.encoded[:BT*C], inputs, p[pWTE], p[pWPE], B, T, C)
	res := a.encoded[:BT*C]
	for l := range L {
		w := func(i, n int) []float32 { return p[i][l*n : (l+1)*n] }
		ln1, ln1m, ln1r := a.ln1[l*BT*C:(l+1)*BT*C], a.ln1m[l*BT:(l+1)*BT], a.ln1r[l*BT:(l+1)*BT]
		qkv := a.qkv[l*BT*3*C : (l+1)*BT*3*C]
		atty := a.atty[l*BT*C : (l+1)*BT*C]
		att := a.att[l*TT : (l+1)*TT]
		res2 := a.res2[l*BT*C : (l+1)*BT*C]
		ln2, ln2m, ln2r := a.ln2[l*BT*C:(l+1)*BT*C], a.ln2m[l*BT:(l+1)*BT], a.ln2r[l*BT:(l+1)*BT]
		fch, fchGelu := a.fch[l*BT*4*C:(l+1)*BT*4*C], a.fchGelu[l*BT*4*C:(l+1)*BT*4*C]
		res3 := a.res3[l*BT*C : (l+1)*BT*C]
		proj := a.proj[:BT*C]

		be.LayerNormForward(ln1, ln1m, ln1r, res, w(pLN1W, C), w(pLN1B, C), BT, C)
		be.MatmulForward(qkv, ln1, w(pQKVW, 3*C*C), w(pQKVB, 3*C), BT, C, 3*C)
		be.AttentionForward(atty, att, qkv, B, T, C, NH)
		be.MatmulForward(proj, atty, w(pAttProjW, C*C), w(pAttProjB, C), BT, C, C)
		be.ResidualForward(res2, res, proj)
		be.LayerNormForward(ln2, ln2m, ln2r, res2, w(pLN2W, C), w(pLN2B, C), BT, C)
		be.MatmulForward(fch, ln2, w(pFCW, 4*C*C), w(pFCB, 4*C), BT, C, 4*C)
		be.GeluForward(fchGelu, fch)
		be.MatmulForward(proj, fchGelu, w(pFCProjW, 4*C*C), w(pFCProjB, C), BT, 4*C, C)
		be.ResidualForward(res3, res2, proj)
		res = res3
	}
	lnf := a.lnf[:BT*C]
	be.LayerNormForward(lnf, a.lnfm[:BT], a.lnfr[:BT], res, p[pLNFW], p[pLNFB], BT, C)
	logits := a.logits[:BT*V]
	be.MatmulForward(logits, lnf, p[pWTE], nil, BT, C, V)
	if targets == nil {
		return 0, nil
	}
	losses := a.losses[:BT]
	be.SoftmaxCrossEntropyForward(losses, logits, logits, targets, BT, V)
	var s float64
	for _, l := range losses {
		s += float64(l)
	}
	return float32(s / float64(BT)), nil
}

// Logits are the (B,T,V) logits of the last Forward without targets.
func (m *Model) Logits() []float32 { return m.a.logits[:m.b*m.t*m.Config.Vocab] }

// ZeroGrad clears the parameter gradients.
func (m *Model) ZeroGrad() { clear(m.Grads.Flat) }

// Backward adds to Grads the gradient of scale times the mean loss of the
// last Forward (scale is 1/accumulation steps). It reads the probabilities
// Forward left, so it may run once per Forward.
func (m *Model) Backward(scale float32) error {
	if !m.hasTargets {
		return fmt.Errorf("trainer: backward needs a forward pass with targets")
	}
	m.hasTargets = false
	c := m.Config
	B, T := m.b, m.t
	BT, C, L, NH, V := B*T, c.Width, c.Layers, c.Heads, c.Vocab
	TT := B * NH * T * T
	p, gr, a, g, be := m.Params.T, m.Grads.T, &m.a, &m.g, m.be

	dlogits := a.logits[:BT*V]
	be.SoftmaxCrossEntropyBackward(dlogits, dlogits, m.targets, scale/float32(BT), BT, V)
	dlnf := g.dlnf[:BT*C]
	clear(dlnf)
	be.MatmulBackward(dlnf, gr[pWTE], nil, dlogits, a.lnf[:BT*C], p[pWTE], BT, C, V)
	// dres is the gradient of the residual stream; walking down a block it
	// is the gradient of res3, then (after the MLP branch adds in) of res2,
	// then (after the attention branch) of the block's input.
	dres := g.dres[:BT*C]
	clear(dres)
	lastRes := a.encoded[:BT*C]
	if L > 0 {
		lastRes = a.res3[(L-1)*BT*C : L*BT*C]
	}
	be.LayerNormBackward(dres, gr[pLNFW], gr[pLNFB], dlnf, lastRes, p[pLNFW], a.lnfm[:BT], a.lnfr[:BT], BT, C)

	for l := L - 1; l >= 0; l-- {
		w := func(i, n int) []float32 { return p[i][l*n : (l+1)*n] }
		dw := func(i, n int) []float32 { return gr[i][l*n : (l+1)*n] }
		res := a.encoded[:BT*C]
		if l > 0 {
			res = a.res3[(l-1)*BT*C : l*BT*C]
		}
		ln1, ln1m, ln1r := a.ln1[l*BT*C:(l+1)*BT*C], a.ln1m[l*BT:(l+1)*BT], a.ln1r[l*BT:(l+1)*BT]
		qkv := a.qkv[l*BT*3*C : (l+1)*BT*3*C]
		atty := a.atty[l*BT*C : (l+1)*BT*C]
		att := a.att[l*TT : (l+1)*TT]
		res2 := a.res2[l*BT*C : (l+1)*BT*C]
		ln2, ln2m, ln2r := a.ln2[l*BT*C:(l+1)*BT*C], a.ln2m[l*BT:(l+1)*BT], a.ln2r[l*BT:(l+1)*BT]
		fch, fchGelu := a.fch[l*BT*4*C:(l+1)*BT*4*C], a.fchGelu[l*BT*4*C:(l+1)*BT*4*C]

		// MLP branch: res3 = res2 + fcproj(gelu(fc(ln2(res2)))).
		dfchGelu, dfch, dln := g.dfchGelu[:BT*4*C], g.dfch[:BT*4*C], g.dln[:BT*C]
		clear(dfchGelu)
		be.MatmulBackward(dfchGelu, dw(pFCProjW, 4*C*C), dw(pFCProjB, C), dres, fchGelu, w(pFCProjW, 4*C*C), BT, 4*C, C)
		clear(dfch)
		be.GeluBackward(dfch, fch, dfchGelu)
		clear(dln)
		be.MatmulBackward(dln, dw(pFCW, 4*C*C), dw(pFCB, 4*C), dfch, ln2, w(pFCW, 4*C*C), BT, C, 4*C)
		be.LayerNormBackward(dres, dw(pLN2W, C), dw(pLN2B, C), dln, res2, w(pLN2W, C), ln2m, ln2r, BT, C)

		// Attention branch: res2 = res + attproj(attention(qkv(ln1(res)))).
		datty, dqkv, datt := g.datty[:BT*C], g.dqkv[:BT*3*C], g.datt[:TT]
		clear(datty)
		be.MatmulBackward(datty, dw(pAttProjW, C*C), dw(pAttProjB, C), dres, atty, w(pAttProjW, C*C), BT, C, C)
		clear(dqkv)
		be.AttentionBackward(dqkv, datt, datty, qkv, att, B, T, C, NH)
		clear(dln)
		be.MatmulBackward(dln, dw(pQKVW, 3*C*C), dw(pQKVB, 3*C), dqkv, ln1, w(pQKVW, 3*C*C), BT, C, 3*C)
		be.LayerNormBackward(dres, dw(pLN1W, C), dw(pLN1B, C), dln, res, w(pLN1W, C), ln1m, ln1r, BT, C)
	}
	be.EncoderBackward(gr[pWTE], gr[pWPE], dres, m.inputs, B, T, C)
	return nil
}
