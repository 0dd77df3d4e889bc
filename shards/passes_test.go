package shards

import (
	"testing"
)

// TestPassesMatchLoader: the passes Passes predicts are the loader's own.
// A one-source loader is run one row at a time until it turns to its next
// epoch: the rows it drew in the first equal EpochSamples, with documents
// or chunks held out, several windows per epoch and two ranks. On a
// two-source mix Passes' rows are the rows Next drew and its passes the
// loader's epoch plus its position in the epoch.
func TestPassesMatchLoader(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	for _, tc := range []struct {
		name string
		src  *testSrc
		opt  LoaderOptions
	}{
		{"all", shortDocs(0, 200), LoaderOptions{SeqLen: 16, BatchSize: 1, Window: 64}},
		{"documents", shortDocs(0, 200), LoaderOptions{SeqLen: 16, BatchSize: 1, Window: 64, ValFraction: 0.1}},
		{"samples", longDocs(0, 3, 3000), LoaderOptions{SeqLen: 16, BatchSize: 1, Window: 200, ValFraction: 0.1}},
		{"held-out side", shortDocs(0, 200), LoaderOptions{SeqLen: 16, BatchSize: 1, Window: 64, ValFraction: 0.1, Val: true}},
		{"rank 1 of 2", shortDocs(0, 200), LoaderOptions{SeqLen: 16, BatchSize: 1, Window: 64, Rank: 1, World: 2}},
	} {
		mixPath := testMix(t, []float64{1}, []*testSrc{tc.src}, 4<<10)
		l := open(t, mixPath, tc.opt)
		buf := make([]uint32, l.BatchTokens())
		var drawn int64
		for l.SourceEpochs()[0] == 0 {
			if err := l.Next(buf); err != nil {
				t.Fatal(err)
			}
			drawn++
		}
		drawn-- // the last row is the next epoch's first
		p, err := open(t, mixPath, tc.opt).Passes(drawn)
		if err != nil {
			t.Fatal(err)
		}
		if p[0].EpochSamples != drawn || p[0].Passes != 1 || p[0].Rows != drawn {
			t.Fatalf("%s: the loader drew %d rows in its first epoch; Passes says %+v", tc.name, drawn, p[0])
		}
		if len(l.srcs[0].winStart) < 3 {
			t.Fatalf("%s: one window per epoch; the test wants several", tc.name)
		}
	}

	// Two sources, one window per epoch, with a held-out split: after 250
	// batches of 5 rows Passes says where the loader is.
	mixPath := testMix(t, []float64{3, 1}, []*testSrc{shortDocs(0, 60), shortDocs(1, 200)}, 2<<10)
	opt := LoaderOptions{SeqLen: 16, BatchSize: 5, ValFraction: 0.05, Seed: 4}
	l := open(t, mixPath, opt)
	buf := make([]uint32, l.BatchTokens())
	for range 250 {
		if err := l.Next(buf); err != nil {
			t.Fatal(err)
		}
	}
	p, err := open(t, mixPath, opt).Passes(250)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range l.srcs {
		got := float64(s.Epoch) + float64(s.Pos)/float64(len(s.win.perm))
		if p[i].Rows != s.Rows || p[i].Passes != got {
			t.Fatalf("source %d: loader drew %d rows, at %.6f passes; Passes says %+v", i, s.Rows, got, p[i])
		}
	}
	if p[0].Passes < 2 {
		t.Fatalf("source 0 at %.2f passes: the test wants several", p[0].Passes)
	}
	// LoaderPlan is the same count, for a budget in tokens.
	m, err := LoadMix(mixPath)
	if err != nil {
		t.Fatal(err)
	}
	rows, _, err := m.LoaderPlan(opt, 250*5*16-7)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		if rows[i].Epochs != p[i].Passes || rows[i].Drawn != p[i].Rows*16 {
			t.Fatalf("LoaderPlan %+v, Passes %+v", rows[i], p[i])
		}
	}
	// The token-count plan is off by the overlap and the held-out data.
	plan := l.Mix().Plan(250 * 5 * 16)
	t.Logf("token-count plan: %.3f / %.3f epochs; loader: %.3f / %.3f passes", plan[0].Epochs, plan[1].Epochs, p[0].Passes, p[1].Passes)
	if plan[0].Epochs >= p[0].Passes {
		t.Fatalf("plan %.3f epochs, loader %.3f passes", plan[0].Epochs, p[0].Passes)
	}
}
