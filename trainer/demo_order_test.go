package trainer

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

// packedOrder is the order smelt's loader drew before the sample index
// (issue 14), kept only to measure what the sample index is worth: per
// source and epoch, shards in a shuffled order cut into windows of four,
// the documents of a window shuffled, whole documents packed end to end
// into SeqLen+1-token rows, and the next document taken from the source
// furthest behind its weight's share of the tokens. A long document thus
// fills many consecutive batches.
type packedOrder struct {
	srcs    []*packedSrc
	cur     []uint32 // the rest of the document being packed
	curSrc  int
	emitted []int64
}

type packedSrc struct {
	src   *shards.MixSource
	vocab int
	rng   *rand.Rand
	order []int // shard order of the epoch
	group int
	docs  [][]uint32
	pos   int
}

func newPackedOrder(m *shards.Mix, seed uint64) *packedOrder {
	p := &packedOrder{emitted: make([]int64, len(m.Sources))}
	for i, s := range m.Sources {
		p.srcs = append(p.srcs, &packedSrc{src: s, vocab: m.VocabSize(), rng: rand.New(rand.NewPCG(seed, uint64(i)))})
	}
	return p
}

// nextDoc returns the source's next document, reading its next window of
// four shards when the current one is done.
func (s *packedSrc) nextDoc() ([]uint32, error) {
	const window = 4
	for s.pos >= len(s.docs) {
		shs := s.src.Manifest.Shards
		if s.order == nil || s.group*window >= len(shs) {
			s.order = s.rng.Perm(len(shs))
			s.group = 0
		}
		s.docs, s.pos = s.docs[:0], 0
		for _, i := range s.order[s.group*window : min(len(shs), (s.group+1)*window)] {
			info := shs[i]
			ts, err := shards.ReadTokenShard(filepath.Join(s.src.Dir, info.Name), &info, s.vocab)
			if err != nil {
				return nil, err
			}
			for r := range ts.Rows() {
				if ts.Len(r) > 0 {
					s.docs = append(s.docs, ts.AppendTokens(nil, r, 0, ts.Len(r)))
				}
			}
		}
		s.group++
		s.rng.Shuffle(len(s.docs), func(i, j int) { s.docs[i], s.docs[j] = s.docs[j], s.docs[i] })
	}
	s.pos++
	return s.docs[s.pos-1], nil
}

func (p *packedOrder) Next(dst []uint32) error {
	for n := 0; n < len(dst); {
		if len(p.cur) == 0 {
			best := 0
			for i, s := range p.srcs {
				if float64(p.emitted[i])/s.src.Weight < float64(p.emitted[best])/p.srcs[best].src.Weight {
					best = i
				}
			}
			d, err := p.srcs[best].nextDoc()
			if err != nil {
				return err
			}
			p.cur, p.curSrc = d, best
		}
		k := copy(dst[n:], p.cur)
		p.cur = p.cur[k:]
		p.emitted[p.curSrc] += int64(k)
		n += k
	}
	return nil
}

func (p *packedOrder) State() ([]byte, error) { return nil, nil }
func (p *packedOrder) Restore([]byte) error   { return errors.New("packedOrder cannot restore") }

// corpusLoss is the mean loss of m over every source's documents laid end
// to end in order and cut into consecutive sequences of T+1 tokens
// overlapping by one, in batches of B (a last partial batch is left out).
func corpusLoss(t *testing.T, m *Model, mix *shards.Mix, B, T int) []float64 {
	t.Helper()
	var out []float64
	for _, s := range mix.Sources {
		var toks []uint32
		for _, info := range s.Manifest.Shards {
			ts, err := shards.ReadTokenShard(filepath.Join(s.Dir, info.Name), &info, mix.VocabSize())
			if err != nil {
				t.Fatal(err)
			}
			for r := range ts.Rows() {
				toks = ts.AppendTokens(toks, r, 0, ts.Len(r))
			}
		}
		in, tgt := make([]uint32, B*T), make([]uint32, B*T)
		var sum float64
		n := 0
		for off := 0; off+B*T+1 <= len(toks); off += B * T {
			for b := range B {
				copy(in[b*T:(b+1)*T], toks[off+b*T:])
				copy(tgt[b*T:(b+1)*T], toks[off+b*T+1:])
			}
			loss, err := m.Forward(in, tgt, B, T)
			if err != nil {
				t.Fatal(err)
			}
			sum += float64(loss)
			n++
		}
		out = append(out, sum/float64(n))
	}
	return out
}

// largestRise is the largest rise of the 20-step running mean of the
// training loss after warmup: how far the loss jumps back up.
func largestRise(h []Record, warmup int) float64 {
	const w = 20
	var means []float64
	for i := w; i <= len(h); i++ {
		if h[i-w].Step <= warmup {
			continue
		}
		var s float64
		for _, r := range h[i-w : i] {
			s += r.Loss
		}
		means = append(means, s/w)
	}
	rise, low := 0.0, math.Inf(1)
	for _, m := range means {
		low = min(low, m)
		rise = max(rise, m-low)
	}
	return rise
}

// TestDemoLoaderOrder trains the demo's model on the demo's token shards
// twice with the same steps and settings, once in the document-packing
// order and once through the sample-index loader, and compares the loss
// over the whole corpus. It needs a finished demo run:
//
//	SMELT_DEMO_RUN=demo-run go test -tags openblas ./trainer -run DemoLoaderOrder -v
func TestDemoLoaderOrder(t *testing.T) {
	run := os.Getenv("SMELT_DEMO_RUN")
	if run == "" {
		t.Skip("set SMELT_DEMO_RUN to a finished smelt demo run directory to compare the loaders on its data")
	}
	mix, err := shards.LoadMix(filepath.Join(run, "train", "mix.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ck, err := LoadCheckpoint(filepath.Join(run, "train", CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	o := ck.Options
	o.ValEvery, o.CheckpointEvery, o.OutDir, o.PeakFLOPS = 0, 0, "", 1e9
	info := DataInfo{Vocab: mix.VocabSize(), Tokenizer: mix.Tokenizer(), EOT: mix.EOT()}
	threads := runtime.GOMAXPROCS(0)
	type result struct {
		name  string
		rise  float64
		final float64
		loss  []float64
		total float64
	}
	var res []result
	for _, name := range []string{"document packing", "sample index"} {
		var b Batcher
		if name == "document packing" {
			b = newPackedOrder(mix, o.Seed)
		} else {
			l, err := shards.NewLoader(mix, shards.LoaderOptions{SeqLen: o.SeqLen, BatchSize: o.BatchSize, Seed: o.Seed})
			if err != nil {
				t.Fatal(err)
			}
			b = l
		}
		tr, err := New(ck.Config, NewCPU(threads), o, info, b, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		h := tr.History()
		loss := corpusLoss(t, tr.Model, mix, o.BatchSize, o.SeqLen)
		var total, w float64
		for i, s := range mix.Sources {
			total += loss[i] * float64(s.Tokens())
			w += float64(s.Tokens())
		}
		r := result{name: name, rise: largestRise(h, o.WarmupSteps), final: h[len(h)-1].Loss, loss: loss, total: total / w}
		res = append(res, r)
		for i, s := range mix.Sources {
			t.Logf("%-16s whole-corpus loss on %-6s %.3f", name, s.Name, loss[i])
		}
		t.Logf("%-16s whole-corpus loss %.3f; largest rise of the 20-step mean after warmup %.3f; last step's loss %.3f", name, r.total, r.rise, r.final)
	}
	if d := res[0].total - res[1].total; d < 0.5 {
		t.Fatalf("the sample index lowers the whole-corpus loss by %.3f nats, want at least 0.5", d)
	}
	if res[1].rise > 0.3 {
		t.Fatalf("the 20-step mean loss rises by %.3f after warmup on the sample index, want at most 0.3", res[1].rise)
	}
}
