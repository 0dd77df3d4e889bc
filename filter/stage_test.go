package filter

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
)

func writeInput(t *testing.T, docs []*shards.Document) string {
	t.Helper()
	dir := t.TempDir()
	w := shards.NewDocWriter(dir, shards.DocWriterOptions{TargetBytes: 20_000})
	for _, d := range docs {
		if err := w.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := shards.WriteManifest(dir, &shards.Manifest{Kind: shards.KindDocuments, Stage: "test",
		Shards: w.Shards(), Totals: shards.SumShards(w.Shards())}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestStageEndToEnd(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	var docs []*shards.Document
	for i := 0; i < 300; i++ {
		text := genDoc(r, i%2 == 0)
		switch i % 10 {
		case 3:
			text = ""
		case 5:
			text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n" + text
		}
		docs = append(docs, &shards.Document{ID: fmt.Sprintf("d%03d", i), Source: "gen", Text: text, Lang: "en", LangScore: 0.9})
	}
	in := writeInput(t, docs)
	res, err := Train(context.Background(), genExamples(300, 5), TrainOptions{Bits: 14})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Rules = []string{RuleLanguage, RuleC4, RuleGopherQuality}
	run := func(workers int) (string, *shards.Stats) {
		p, err := cfg.Pipeline()
		if err != nil {
			t.Fatal(err)
		}
		s := &Stage{Pipeline: p, Model: res.Model, Keep: Keep{Kind: "pareto", Alpha: 9}}
		out := filepath.Join(t.TempDir(), "out")
		st, err := s.Run(context.Background(), RunOptions{Inputs: []string{in}, Out: out, Workers: workers, TargetBytes: 20_000, Settings: cfg})
		if err != nil {
			t.Fatal(err)
		}
		return out, st
	}
	out1, st := run(1)
	out2, _ := run(3)
	testutil.SameTree(t, out1, out2) // 1 and 3 workers
	kept, dropped := testutil.ReadDocs(t, out1), testutil.ReadDocs(t, filepath.Join(out1, shards.DroppedDir))
	if len(kept)+len(dropped) != len(docs) || len(kept) == 0 || len(dropped) == 0 {
		t.Fatalf("%d kept + %d dropped != %d", len(kept), len(dropped), len(docs))
	}
	for _, d := range append(kept, dropped...) {
		if !d.HasQuality || d.Quality < 0 || d.Quality > 1 {
			t.Errorf("%s: quality %v %v", d.ID, d.HasQuality, d.Quality)
		}
	}
	reasons := map[string]int{}
	for _, d := range dropped {
		if d.Drop == nil || d.Drop.Reason == "" {
			t.Fatalf("%s: dropped without a reason", d.ID)
		}
		reasons[d.Drop.Reason]++
	}
	if reasons[C4LoremIpsum] != 30 || reasons[C4TooFewSentences] < 30 {
		t.Errorf("reasons %v: want 30 lorem ipsum and the empty documents among too few sentences", reasons)
	}
	for reason, n := range reasons {
		if st.Dropped[reason].Docs != int64(n) {
			t.Errorf("stats count %d for %s, found %d", st.Dropped[reason].Docs, reason, n)
		}
	}
	if _, ok := st.Dropped[GopherTooFewStopWords]; !ok {
		t.Error("declared reasons must show in stats with zero counts")
	}
	if st.Modified["c4"].Docs == 0 || st.Modified["c4"].Bytes == 0 {
		t.Errorf("c4 removals not counted: %+v", st.Modified)
	}
	hk, hd := st.Histograms[StatQualityKept], st.Histograms[StatQualityDropped]
	if hk == nil || hd == nil {
		t.Fatalf("missing quality histograms: %v", st.Histograms)
	}
	var nk, nd int64
	for _, c := range hk.Counts {
		nk += c
	}
	for _, c := range hd.Counts {
		nd += c
	}
	if nk != int64(len(kept)) || nd != int64(len(dropped)) {
		t.Errorf("histogram counts %d/%d, want %d/%d", nk, nd, len(kept), len(dropped))
	}
}

// TestStageResume interrupts a run part-way and starts it again: the output
// must equal an uninterrupted run's, byte for byte.
func TestStageResume(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	var docs []*shards.Document
	for i := 0; i < 400; i++ {
		docs = append(docs, &shards.Document{ID: fmt.Sprintf("r%03d", i), Text: genDoc(r, i%3 != 0)})
	}
	in := writeInput(t, docs)
	cfg := DefaultConfig()
	p, _ := cfg.Pipeline()
	s := &Stage{Pipeline: p}
	full := filepath.Join(t.TempDir(), "full")
	if _, err := s.Run(context.Background(), RunOptions{Inputs: []string{in}, Out: full, Workers: 2, TargetBytes: 8_000, Settings: cfg}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithCancel(context.Background())
	_, err := s.Run(ctx, RunOptions{Inputs: []string{in}, Out: out, Workers: 2, TargetBytes: 8_000, Settings: cfg,
		Progress: func(docs, _, _, _ int64) {
			if docs == 250 {
				cancel()
			}
		}})
	if err == nil {
		t.Fatal("interrupted run returned no error")
	}
	if _, err := s.Run(context.Background(), RunOptions{Inputs: []string{in}, Out: out, Workers: 1, TargetBytes: 8_000, Settings: cfg}); err != nil {
		t.Fatal(err)
	}
	testutil.SameTree(t, full, out) // resumed vs uninterrupted
}
