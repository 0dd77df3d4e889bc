package trainer

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// parityVectors is what testdata/parity.py writes.
type parityVectors struct {
	Config Config   `json:"config"`
	Batch  int      `json:"batch"`
	Seq    int      `json:"seq"`
	Names  []string `json:"names"`
	Sizes  []int    `json:"sizes"`
	Loss   float64  `json:"loss"`
	Torch  string   `json:"torch"`
	AdamW  struct {
		LR, Beta1, Beta2, Eps, WeightDecay float32
	} `json:"adamw"`
	inputs, targets        []uint32
	params, grads, stepped []float32
}

func readParity(path string) (*parityVectors, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		return nil, fmt.Errorf("%s: no header line", path)
	}
	var v parityVectors
	if err := json.Unmarshal(data[:nl], &v); err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	var aw struct {
		LR          float32 `json:"lr"`
		Beta1       float32 `json:"beta1"`
		Beta2       float32 `json:"beta2"`
		Eps         float32 `json:"eps"`
		WeightDecay float32 `json:"weight_decay"`
	}
	var raw struct {
		AdamW json.RawMessage `json:"adamw"`
	}
	if err := json.Unmarshal(data[:nl], &raw); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw.AdamW, &aw); err != nil {
		return nil, err
	}
	v.AdamW.LR, v.AdamW.Beta1, v.AdamW.Beta2, v.AdamW.Eps, v.AdamW.WeightDecay = aw.LR, aw.Beta1, aw.Beta2, aw.Eps, aw.WeightDecay
	r := bufio.NewReader(bytes.NewReader(data[nl+1:]))
	bt := v.Batch * v.Seq
	n := 0
	for _, s := range v.Sizes {
		n += s
	}
	v.inputs, v.targets = make([]uint32, bt), make([]uint32, bt)
	v.params, v.grads, v.stepped = make([]float32, n), make([]float32, n), make([]float32, n)
	for _, dst := range []any{v.inputs, v.targets, v.params, v.grads, v.stepped} {
		if err := binary.Read(r, binary.LittleEndian, dst); err != nil {
			return nil, fmt.Errorf("%s: body: %w", path, err)
		}
	}
	return &v, nil
}

// relErr is max|got-want| / max|want| over a tensor: elementwise relative
// error is meaningless for entries near zero.
func relErr(got, want []float32) float64 {
	var d, m float64
	for i := range want {
		d = max(d, math.Abs(float64(got[i])-float64(want[i])))
		m = max(m, math.Abs(float64(want[i])))
	}
	if m == 0 {
		return d
	}
	return d / m
}

// checkParity compares the model's loss, every gradient and one AdamW step
// with PyTorch's, to 1e-4 relative (the bound).
func checkParity(t *testing.T, v *parityVectors, be Backend) {
	t.Helper()
	if len(v.Names) != len(ParamNames) {
		t.Fatalf("vectors have %d tensors, model %d", len(v.Names), len(ParamNames))
	}
	m, err := NewModel(v.Config, be, 1, v.Batch, v.Seq)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range v.Names {
		if n != ParamNames[i] || v.Sizes[i] != len(m.Params.T[i]) {
			t.Fatalf("tensor %d: vectors %s[%d], model %s[%d]", i, n, v.Sizes[i], ParamNames[i], len(m.Params.T[i]))
		}
	}
	copy(m.Params.Flat, v.params)
	loss, err := m.Forward(v.inputs, v.targets, v.Batch, v.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if e := math.Abs(float64(loss)-v.Loss) / math.Abs(v.Loss); e > 1e-4 {
		t.Errorf("loss %.7f, torch %.7f (rel %.2e)", loss, v.Loss, e)
	}
	m.ZeroGrad()
	if err := m.Backward(1); err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i, n := range ParamNames {
		off := 0
		for _, s := range v.Sizes[:i] {
			off += s
		}
		e := relErr(m.Grads.T[i], v.grads[off:off+v.Sizes[i]])
		worst = max(worst, e)
		if e > 1e-4 {
			t.Errorf("grad %s: rel err %.2e > 1e-4", n, e)
		}
	}
	t.Logf("%s: loss %.7f vs torch %.7f, worst grad rel err %.2e", be.Name(), loss, v.Loss, worst)

	// AdamW from the reference gradients, so the optimizer is checked alone.
	opt := NewAdamW(v.Config)
	params := append([]float32(nil), v.params...)
	p := &Tensors{Flat: params}
	g := &Tensors{Flat: append([]float32(nil), v.grads...)}
	off := 0
	for i, s := range v.Sizes {
		p.T[i], g.T[i] = params[off:off+s], g.Flat[off:off+s]
		off += s
	}
	opt.Beta1, opt.Beta2, opt.Eps, opt.WeightDecay = v.AdamW.Beta1, v.AdamW.Beta2, v.AdamW.Eps, v.AdamW.WeightDecay
	opt.Step(be, p, g, v.AdamW.LR)
	for i, n := range ParamNames {
		// The step moves each entry by about lr: compare the change.
		var d, ref float64
		for j := range p.T[i] {
			o := off0(v.Sizes, i) + j
			d = max(d, math.Abs(float64(params[o])-float64(v.stepped[o])))
			ref = max(ref, math.Abs(float64(v.stepped[o])-float64(v.params[o])))
		}
		if d > 1e-4*ref+1e-7 {
			t.Errorf("AdamW %s: max diff %.2e vs step size %.2e", n, d, ref)
		}
	}
}

func off0(sizes []int, i int) int {
	o := 0
	for _, s := range sizes[:i] {
		o += s
	}
	return o
}

func TestParityCommittedVectors(t *testing.T) {
	v, err := readParity(filepath.Join("testdata", "parity_tiny.bin"))
	if err != nil {
		t.Fatal(err)
	}
	checkParity(t, v, NewCPU(2))
	checkParity(t, v, NewPureGo(1))
}

// torchPython finds a python3 that can import torch, or "".
func torchPython() string {
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import torch").Run() == nil {
			return py
		}
	}
	return ""
}

func TestParityLiveTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	py := torchPython()
	if py == "" {
		t.Skip("no python3 with torch (apt-get install python3-torch); the committed vectors still ran")
	}
	out := filepath.Join(t.TempDir(), "live.bin")
	cmd := exec.Command(py, filepath.Join("testdata", "parity.py"), out, "--seed", "777")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("parity.py: %v\n%s", err, b)
	}
	v, err := readParity(out)
	if err != nil {
		t.Fatal(err)
	}
	checkParity(t, v, NewCPU(2))
}
