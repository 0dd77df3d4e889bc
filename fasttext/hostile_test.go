package fasttext_test

// Crafted and corrupt model files (issue 26, C1 and C2): every size a file
// gives is checked against what the file holds before anything is
// allocated for it, and NaN, Inf or huge weights are refused at load. The
// memory bound is asserted with runtime.MemStats.TotalAlloc (bytes
// allocated, whatever the GC did since), so it does not depend on timing.

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/fasttext"
	"github.com/smelt-dev/smelt/internal/testutil"
)

// smallModel trains a small supervised model (with character and word
// n-grams, unquantized) and returns its file bytes: ~35 KB, the size of
// the model the review mutated. Train fits softmax and one-vs-all; for hs
// and ns the one-vs-all model's loss field is changed (the file layout is
// the same).
func smallModel(t testing.TB, loss fasttext.LossName) []byte {
	t.Helper()
	if loss == fasttext.LossHS || loss == fasttext.LossNS {
		b := smallModel(t, fasttext.LossOVA)
		binary.LittleEndian.PutUint32(b[32:], uint32(loss))
		return b
	}
	t.Helper()
	var ex []fasttext.Example
	en := []string{"the cat sat on the mat", "a dog and a cat", "this is an english sentence", "where is the station"}
	de := []string{"die katze sitzt auf der matte", "ein hund und eine katze", "das ist ein deutscher satz", "wo ist der bahnhof"}
	for i := range 8 {
		ex = append(ex, fasttext.Example{Labels: []string{"__label__en"}, Text: en[i%4]})
		ex = append(ex, fasttext.Example{Labels: []string{"__label__de"}, Text: de[i%4]})
	}
	m, err := fasttext.Train(context.Background(), ex, fasttext.TrainOptions{
		Dim: 8, Epoch: 5, Minn: 2, Maxn: 4, Bucket: 1000, Loss: loss, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := m.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// allocated runs f and returns the bytes it allocated.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// header returns a model header: magic, version 12, args with the given
// bucket (dim 16, softmax, supervised, no n-grams), t.
func header(bucket int32) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, 793712314)
	b = le.AppendUint32(b, 12)
	for _, v := range []int32{16, 5, 5, 1, 5, 1, 3, 3, bucket, 0, 0, 100} {
		b = le.AppendUint32(b, uint32(v))
	}
	return le.AppendUint64(b, math.Float64bits(1e-4))
}

// checkPredict predicts with m and fails on a probability that is not a
// number in [0, 1+1e-5].
func checkPredict(t testing.TB, m *fasttext.Model) {
	t.Helper()
	for _, line := range []string{"the cat sat on the mat", "die katze", "", "zz qq xx yy"} {
		ps, err := m.Predict(line, -1, 0)
		if err != nil {
			continue
		}
		for _, p := range ps {
			if !(p.Prob >= 0 && p.Prob <= 1.0001) {
				t.Fatalf("%q: probability %v for %s", line, p.Prob, p.Label)
			}
		}
	}
}

// The review's crafted files: each is refused with an error naming the
// file and an offset, after allocating little.
func TestLoadCraftedSizes(t *testing.T) {
	le := binary.LittleEndian
	dict := func(size, nwords, nlabels int32, ntokens, prune int64) []byte {
		b := le.AppendUint32(nil, uint32(size))
		b = le.AppendUint32(b, uint32(nwords))
		b = le.AppendUint32(b, uint32(nlabels))
		b = le.AppendUint64(b, uint64(ntokens))
		return le.AppendUint64(b, uint64(prune))
	}
	label := append([]byte("__label__a\x00"), make([]byte, 9)...)
	label[len(label)-1] = 1 // type label
	matrix := func(rows, cols int64) []byte {
		b := []byte{0}
		b = le.AppendUint64(b, uint64(rows))
		return le.AppendUint64(b, uint64(cols))
	}
	pad := func(b []byte, n int) []byte { return append(b, make([]byte, n-len(b))...) }
	cases := []struct {
		name string
		data []byte
		want string
	}{
		// 132 bytes: bucket = prune_size = 2^31-1 (fatal OOM before).
		{"prune size 2^31-1", pad(append(header(1<<31-1), dict(0, 0, 0, 0, 1<<31-1)...), 132), "prune index"},
		{"prune size 2^26", pad(append(header(1<<31-1), dict(0, 0, 0, 0, 1<<26)...), 132), "prune index"},
		// 2^28 dictionary entries announced, none there.
		{"dictionary 2^28", pad(append(header(0), dict(1<<28, 0, 1<<28, 0, -1)...), 132), "dictionary size"},
		// A 2^32-float matrix header (16 GiB asked for).
		{"matrix 2^32 floats", slicesConcat(header(0), dict(1, 0, 1, 0, -1), label, matrix(1<<16, 1<<16)), "input matrix"},
		{"matrix 2^26 rows", slicesConcat(header(0), dict(1, 0, 1, 0, -1), label, matrix(1<<26, 16)), "input matrix"},
		// Quantized: 2^31-1 codes announced.
		{"quantized codes", slicesConcat(header(0), dict(1, 0, 1, 0, -1), label, []byte{1, 0},
			le.AppendUint64(nil, 1<<20), le.AppendUint64(nil, 16), le.AppendUint32(nil, 1<<31-1)), "input matrix"},
		{"minn 2^30", func() []byte {
			h := header(10)
			le.PutUint32(h[8+36:], 1<<30) // minn
			return pad(h, 132)
		}(), "implausible args"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".bin")
		if err := os.WriteFile(path, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		var err error
		n := allocated(func() { _, err = fasttext.Load(path) })
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "offset") {
			t.Errorf("%s: %v, want an error naming %s, %q and an offset", c.name, err, path, c.want)
		}
		if n > 1<<20 {
			t.Errorf("%s (%d bytes): loading allocated %d bytes", c.name, len(c.data), n)
		}
		// The same through a reader of unknown length: arrays grow only
		// with the data that arrives.
		n = allocated(func() { _, err = fasttext.Read(struct{ *bytes.Reader }{bytes.NewReader(c.data)}) })
		if err == nil {
			t.Errorf("%s: stream read accepted it", c.name)
		}
		if n > 1<<20 {
			t.Errorf("%s (stream): reading allocated %d bytes", c.name, n)
		}
	}
}

func slicesConcat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// NaN, Inf and absurd weights are refused at load for every loss (they
// panicked in tableSigmoid with ova and ns, and gave NaN with softmax).
func TestLoadBadWeights(t *testing.T) {
	for _, loss := range []fasttext.LossName{fasttext.LossSoftmax, fasttext.LossOVA} {
		good := smallModel(t, loss)
		m, err := fasttext.Read(bytes.NewReader(good))
		if err != nil {
			t.Fatal(err)
		}
		checkPredict(t, m)
		for _, v := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 1e30} {
			for _, off := range []int{len(good) - 4, len(good) - 2*8*4 - 17 - 4} { // output matrix; input matrix (2 labels x dim 8, 17-byte header between)
				bad := bytes.Clone(good)
				binary.LittleEndian.PutUint32(bad[off:], math.Float32bits(v))
				_, err := fasttext.Read(bytes.NewReader(bad))
				if err == nil || !strings.Contains(err.Error(), "weight") || !strings.Contains(err.Error(), "offset") {
					t.Errorf("loss %s, weight %v at %d: %v, want a weight error with its offset", loss, v, off, err)
				}
			}
		}
	}
}

// Random 1-4 byte mutations of a real model: each gives an error or a
// model that predicts finite probabilities; none allocates more than a
// small multiple of the file (4.3 and 8.6 GB before).
func TestLoadMutations(t *testing.T) { loadMutations(t, 300) }

// TestLoadMutationsThorough is the long run of TestLoadMutations.
func TestLoadMutationsThorough(t *testing.T) {
	testutil.Thorough(t)
	loadMutations(t, 10000)
}

func loadMutations(t *testing.T, n int) {
	for _, loss := range []fasttext.LossName{fasttext.LossSoftmax, fasttext.LossOVA, fasttext.LossHS} {
		good := smallModel(t, loss)
		rng := rand.New(rand.NewPCG(26, uint64(loss)))
		var worst uint64
		for i := range n {
			bad := bytes.Clone(good)
			for range 1 + rng.IntN(4) {
				p := rng.IntN(len(bad))
				switch rng.IntN(3) {
				case 0:
					bad[p] = byte(rng.Uint32())
				case 1:
					bad[p] ^= 0x80
				default:
					bad[p] = 0xff
				}
			}
			var m *fasttext.Model
			var err error
			a := allocated(func() { m, err = fasttext.Read(bytes.NewReader(bad)) })
			worst = max(worst, a)
			if a > 8<<20 {
				t.Fatalf("loss %s, mutation %d: reading %d bytes allocated %d bytes", loss, i, len(bad), a)
			}
			if err == nil {
				checkPredict(t, m)
			} else if !strings.Contains(err.Error(), "offset") && !strings.Contains(err.Error(), "matrix") &&
				!strings.Contains(err.Error(), "label") && !strings.Contains(err.Error(), "model") {
				t.Errorf("loss %s, mutation %d: error without a place: %v", loss, i, err)
			}
		}
		t.Logf("loss %s: %d mutations of a %d-byte model, at most %d bytes allocated by one read", loss, n, len(good), worst)
	}
}

// FuzzRead: no input makes Read panic, allocate far beyond its size, or
// give a model whose predictions are not probabilities. Seeded with small
// trained models of each loss and the crafted headers above.
func FuzzRead(f *testing.F) {
	for _, loss := range []fasttext.LossName{fasttext.LossSoftmax, fasttext.LossOVA, fasttext.LossHS, fasttext.LossNS} {
		f.Add(smallModel(f, loss))
	}
	f.Add(append(header(1<<31-1), make([]byte, 68)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m *fasttext.Model
		var err error
		a := allocated(func() { m, err = fasttext.Read(bytes.NewReader(data)) })
		if a > 64*uint64(len(data))+16<<20 {
			t.Fatalf("reading %d bytes allocated %d", len(data), a)
		}
		if err == nil {
			checkPredict(t, m)
		}
	})
}

// Mutations of the quantized lid.176.ftz (when the reference install has
// it): no read allocates more than twice what the intact model needs.
func TestLoadMutationsLID176(t *testing.T) {
	r := ref(t)
	good := readFile(t, r.lidPath())
	var err error
	base := allocated(func() { _, err = fasttext.Read(bytes.NewReader(good)) })
	if err != nil {
		t.Fatal(err)
	}
	n := 15
	if raceEnabled {
		n = 4
	}
	rng := rand.New(rand.NewPCG(26, 176))
	for i := range n {
		bad := bytes.Clone(good)
		for range 1 + rng.IntN(4) {
			// Most of the file is codes, where any byte is valid: aim half
			// of the mutations at the header, dictionary and quantizers.
			p := rng.IntN(len(bad))
			if rng.IntN(2) == 0 {
				p = rng.IntN(min(len(bad), 4096))
			}
			bad[p] = byte(rng.Uint32())
		}
		var m *fasttext.Model
		a := allocated(func() { m, err = fasttext.Read(bytes.NewReader(bad)) })
		if a > 2*base+1<<20 {
			t.Fatalf("mutation %d: read allocated %d bytes, the intact model %d", i, a, base)
		}
		if err == nil {
			checkPredict(t, m)
		}
	}
}
