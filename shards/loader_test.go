package shards

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// Test token directories use a wide vocabulary so that every token says
// where it comes from: the g-th token of source src's documents (laid end
// to end in writing order, end-of-text ids excluded) is (src+1)<<20 | g.
// A row of a batch can thus be decoded back into (document, position)
// pairs and checked token by token.
const (
	testVocab = 1 << 23
	testEOT   = testVocab - 1
)

// docLen gives documents varied lengths, from 1 to 200 tokens, EOT excluded.
func docLen(src, doc int) int { return 1 + (doc*37+src*11)%200 }

// testSrc is what a test source holds: document lengths (EOT excluded) and
// where each document starts in the source's token numbering.
type testSrc struct {
	idx   int
	lens  []int
	start []int
}

func newTestSrc(idx int, lens []int) *testSrc {
	s := &testSrc{idx: idx, lens: lens}
	g := 0
	for _, n := range lens {
		s.start = append(s.start, g)
		g += n
	}
	if g >= 1<<20 {
		panic("test source too large")
	}
	return s
}

func (s *testSrc) id(doc int) string { return fmt.Sprintf("s%d/%d", s.idx, doc) }

// pos decodes a token of s into its document and position.
func (s *testSrc) pos(tok uint32) (doc, pos int) {
	g := int(tok & (1<<20 - 1))
	doc = sort.SearchInts(s.start, g+1) - 1
	return doc, g - s.start[doc]
}

// write writes s as a token directory with shards of about target bytes.
func (s *testSrc) write(t testing.TB, dir string, target int64) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tok := TokenizerInfo{Name: "test", RanksHash: "r", VocabSize: testVocab, EOT: testEOT}
	w, err := NewTokenWriter(dir, TokenWriterOptions{Tokenizer: tok, TargetBytes: target, BatchRows: 64})
	if err != nil {
		t.Fatal(err)
	}
	for d, n := range s.lens {
		toks := make([]uint32, n+1)
		for i := range n {
			toks[i] = uint32(s.idx+1)<<20 | uint32(s.start[d]+i)
		}
		toks[n] = testEOT
		if err := w.Write(s.id(d), fmt.Sprint("s", s.idx), toks); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := WriteManifest(dir, &Manifest{Kind: KindTokens, Stage: "test", Shards: w.Shards(), Totals: SumShards(w.Shards()), Tokenizer: &tok}); err != nil {
		t.Fatal(err)
	}
}

// makeTokenDir writes a token directory of ndocs documents of docLen tokens.
func makeTokenDir(t testing.TB, dir string, src, ndocs int, target int64) *testSrc {
	lens := make([]int, ndocs)
	for d := range lens {
		lens[d] = docLen(src, d)
	}
	s := newTestSrc(src, lens)
	s.write(t, dir, target)
	return s
}

// testMix writes sources and a mix file with their weights and returns the
// mix file's path.
func testMix(t testing.TB, weights []float64, srcs []*testSrc, target int64) string {
	t.Helper()
	root := t.TempDir()
	var yml strings.Builder
	yml.WriteString("sources:\n")
	for i := range weights {
		srcs[i].write(t, filepath.Join(root, fmt.Sprint("src", i)), target)
		fmt.Fprintf(&yml, "  - {name: s%d, path: src%d, weight: %v}\n", i, i, weights[i])
	}
	path := filepath.Join(root, "mix.yaml")
	if err := os.WriteFile(path, []byte(yml.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func shortDocs(src, n int) *testSrc {
	lens := make([]int, n)
	for d := range lens {
		lens[d] = docLen(src, d)
	}
	return newTestSrc(src, lens)
}

func longDocs(src, n, length int) *testSrc {
	lens := make([]int, n)
	for d := range lens {
		lens[d] = length + d*7
	}
	return newTestSrc(src, lens)
}

func open(t testing.TB, mixPath string, opt LoaderOptions) *Loader {
	t.Helper()
	m, err := LoadMix(mixPath)
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLoader(m, opt)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// tokRef is one decoded token: source, document, position.
type tokRef struct{ src, doc, pos int }

// rowInfo is a decoded row.
type rowInfo struct {
	src     int
	first   tokRef // the first token that is not EOT
	firstAt int
	docs    map[int]bool
	toks    []tokRef // without EOTs
}

// decodeRow checks that a row comes from one source and that it is text
// laid end to end: each token is followed by the next of its document, or
// by EOT when it is the last, and EOT by the first token of a document.
// contiguous=false (split sources) only checks that it decodes.
func decodeRow(t *testing.T, srcs []*testSrc, row []uint32, contiguous bool) rowInfo {
	t.Helper()
	ri := rowInfo{src: -1, firstAt: -1, docs: map[int]bool{}}
	var prev *tokRef
	prevEOT := false
	for i, v := range row {
		if v == testEOT {
			if contiguous && prev != nil && prev.pos != srcs[prev.src].lens[prev.doc]-1 {
				t.Fatalf("row token %d: EOT after position %d of document %d (length %d)", i, prev.pos, prev.doc, srcs[prev.src].lens[prev.doc])
			}
			prevEOT, prev = true, nil
			continue
		}
		src := int(v>>20) - 1
		if src < 0 || src >= len(srcs) {
			t.Fatalf("row token %d: %x is from no source", i, v)
		}
		if ri.src < 0 {
			ri.src = src
		} else if src != ri.src {
			t.Fatalf("row mixes sources %d and %d", ri.src, src)
		}
		doc, pos := srcs[src].pos(v)
		r := tokRef{src, doc, pos}
		if contiguous {
			if prev != nil && (prev.doc != doc || prev.pos+1 != pos) {
				t.Fatalf("row token %d: %v follows %v", i, r, *prev)
			}
			if prevEOT && pos != 0 {
				t.Fatalf("row token %d: %v follows EOT", i, r)
			}
		}
		if ri.firstAt < 0 {
			ri.first, ri.firstAt = r, i
		}
		ri.docs[doc] = true
		ri.toks = append(ri.toks, r)
		prev, prevEOT = &r, false
	}
	return ri
}

func rows(buf []uint32, T1 int) [][]uint32 {
	var out [][]uint32
	for i := 0; i < len(buf); i += T1 {
		out = append(out, buf[i:i+T1])
	}
	return out
}

// epochRows returns a reader of a one-source loader with BatchSize 1:
// each call returns the rows of its next epoch.
func epochRows(t *testing.T, l *Loader) func() [][]uint32 {
	var pending []uint32
	return func() [][]uint32 {
		t.Helper()
		var out [][]uint32
		if pending != nil {
			out = append(out, pending)
		}
		for e := l.SourceEpochs()[0]; ; {
			buf := make([]uint32, l.BatchTokens())
			if err := l.Next(buf); err != nil {
				t.Fatal(err)
			}
			if l.SourceEpochs()[0] != e {
				pending = buf
				return out
			}
			out = append(out, buf)
			if len(out) > 1<<20 {
				t.Fatal("epoch never ends")
			}
		}
	}
}

// TestLoaderEpochCoversEverySample reads whole epochs of one source and
// checks that the samples tile the documents: every token is in one
// sample, or two where consecutive samples overlap, apart from fewer than
// SeqLen tokens at the end of each window; that samples come in a shuffled
// order; and that epochs differ.
func TestLoaderEpochCoversEverySample(t *testing.T) {
	src := shortDocs(0, 500)
	for _, window := range []int{0, 60} {
		t.Run(fmt.Sprint("window", window), func(t *testing.T) {
			mixPath := testMix(t, []float64{1}, []*testSrc{src}, 4<<10)
			l := open(t, mixPath, LoaderOptions{SeqLen: 31, BatchSize: 1, Seed: 7, Window: window})
			nShards := len(l.Mix().Sources[0].Manifest.Shards)
			if nShards < 8 {
				t.Fatalf("want many shards, got %d", nShards)
			}
			var firsts [][]tokRef
			next := epochRows(t, l)
			for e := 0; e < 2; e++ {
				seen := map[tokRef]int{}
				var first []tokRef
				for _, row := range next() {
					ri := decodeRow(t, []*testSrc{src}, row, true)
					for _, r := range ri.toks {
						seen[r]++
					}
					first = append(first, ri.first)
				}
				missing, total := 0, 0
				for d, n := range src.lens {
					for p := range n {
						total++
						switch c := seen[tokRef{0, d, p}]; {
						case c == 0:
							missing++
						case c > 2:
							t.Fatalf("epoch %d: token %d of document %d in %d samples", e, p, d, c)
						}
					}
				}
				windows := 1
				if window > 0 {
					windows = nShards
				}
				if missing >= 31*windows {
					t.Fatalf("epoch %d: %d of %d tokens in no sample (window %d, %d windows at most)", e, missing, total, window, windows)
				}
				if want := (total + len(src.lens)) / 31; len(first) < want*9/10 || len(first) > want {
					t.Fatalf("epoch %d: %d samples of 32 tokens from %d tokens", e, len(first), total)
				}
				firsts = append(firsts, first)
				// Shuffled: a sample rarely continues the previous one.
				follow := 0
				for i := 1; i < len(first); i++ {
					if first[i].doc == first[i-1].doc && first[i].pos > first[i-1].pos {
						follow++
					}
				}
				if follow > len(first)/20 {
					t.Fatalf("epoch %d: %d of %d samples continue the previous one's document: not shuffled", e, follow, len(first))
				}
			}
			if fmt.Sprint(firsts[0][:50]) == fmt.Sprint(firsts[1][:50]) {
				t.Fatal("epochs 0 and 1 have the same order")
			}
		})
	}
}

// docRuns tracks the longest run of consecutive batches whose rows all
// come from one and the same document.
type docRuns struct{ run, longest, prev int }

func (r *docRuns) add(docs map[int]bool) {
	one := -1
	if len(docs) == 1 {
		for d := range docs {
			one = d
		}
	}
	switch {
	case one < 0:
		r.run = 0
	case one == r.prev && r.run > 0:
		r.run++
	default:
		r.run = 1
	}
	r.prev = one
	r.longest = max(r.longest, r.run)
}

// TestLoaderLongDocuments is the case the document-packing loader got
// wrong: documents 50 times longer than a batch. A batch must draw its
// rows from all over the window, not from one document, and every batch
// must carry each source's share of rows.
func TestLoaderLongDocuments(t *testing.T) {
	const seq, batch = 16, 4
	long := 50 * batch * (seq + 1)
	t.Run("one source", func(t *testing.T) {
		books := longDocs(0, 8, long)
		l := open(t, testMix(t, []float64{1}, []*testSrc{books}, 8<<10), LoaderOptions{SeqLen: seq, BatchSize: batch, Seed: 1})
		buf := make([]uint32, l.BatchTokens())
		var runs docRuns
		for range 2000 {
			if err := l.Next(buf); err != nil {
				t.Fatal(err)
			}
			docs := map[int]bool{}
			for _, r := range rows(buf, seq+1) {
				for d := range decodeRow(t, []*testSrc{books}, r, true).docs {
					docs[d] = true
				}
			}
			runs.add(docs)
		}
		// With 8 documents, a batch of 4 rows from one document has
		// chance 8^-3; two in a row from the same one, 8^-7.
		if runs.longest > 2 {
			t.Fatalf("%d consecutive batches drawn from one document", runs.longest)
		}
		t.Logf("longest run of batches from one document: %d", runs.longest)
	})
	t.Run("books and web", func(t *testing.T) {
		const B = 8
		srcs := []*testSrc{longDocs(0, 4, 50*B*(seq+1)), shortDocs(1, 40)}
		weights := []float64{0.85, 0.15}
		l := open(t, testMix(t, weights, srcs, 8<<10), LoaderOptions{SeqLen: seq, BatchSize: B, Seed: 2})
		buf := make([]uint32, l.BatchTokens())
		var runs docRuns
		cum := make([]int, 2)
		for b := 1; b <= 2000; b++ {
			if err := l.Next(buf); err != nil {
				t.Fatal(err)
			}
			per := make([]int, 2)
			bookDocs := map[int]bool{}
			for _, r := range rows(buf, seq+1) {
				ri := decodeRow(t, srcs, r, true)
				per[ri.src]++
				if ri.src == 0 {
					for d := range ri.docs {
						bookDocs[d] = true
					}
				}
			}
			for i, w := range weights {
				share := w * B
				if math.Abs(float64(per[i])-share) >= 1 {
					t.Fatalf("batch %d: source %d has %d rows, share %.2f", b, i, per[i], share)
				}
				cum[i] += per[i]
				if d := float64(cum[i]) - w*float64(b*B); math.Abs(d) > 1 {
					t.Fatalf("after batch %d: source %d has %d rows, share %.1f", b, i, cum[i], w*float64(b*B))
				}
			}
			runs.add(bookDocs)
		}
		if runs.longest > 1 {
			t.Fatalf("%d consecutive batches whose book rows all come from one book", runs.longest)
		}
		if got := l.SourceRows(); got[0] != int64(cum[0]) || got[1] != int64(cum[1]) {
			t.Fatalf("loader counted rows %v, batches held %v", got, cum)
		}
	})
}

// TestLoaderPlan checks the per-batch rule on many weightings: every
// batch gives each source the floor or the ceiling of its share, and the
// running totals stay within one row of the weights.
func TestLoaderPlan(t *testing.T) {
	r := newSplitMix(9, 9, 9)
	for trial := range 300 {
		n := 1 + int(r.bounded(6))
		B := 1 + int(r.bounded(40))
		l := &Loader{opt: LoaderOptions{BatchSize: B}, quota: make([]int, n), order: make([]int, n)}
		var sum float64
		ws := make([]float64, n)
		for i := range ws {
			ws[i] = 0.001 + float64(r.bounded(1000))
			if trial%3 == 0 && i == 0 {
				ws[i] = 0.01 // a tiny source
			}
			sum += ws[i]
		}
		for i := range ws {
			l.srcs = append(l.srcs, &srcCursor{src: &MixSource{Weight: ws[i] / sum}})
		}
		for b := 1; b <= 500; b++ {
			l.plan()
			total := 0
			for i, s := range l.srcs {
				share := s.src.Weight * float64(B)
				if q := float64(l.quota[i]); q < math.Floor(share)-1e-9 || q > math.Ceil(share)+1e-9 {
					t.Fatalf("trial %d batch %d: source %d gets %d rows, share %.3f", trial, b, i, l.quota[i], share)
				}
				s.Rows += int64(l.quota[i])
				total += l.quota[i]
			}
			if total != B {
				t.Fatalf("trial %d: batch of %d rows, want %d", trial, total, B)
			}
			for i, s := range l.srcs {
				if d := float64(s.Rows) - s.src.Weight*float64(b*B); math.Abs(d) > 1+1e-9 {
					t.Fatalf("trial %d (B=%d, weights %v) after batch %d: source %d is %.3f rows off its share", trial, B, ws, b, i, d)
				}
			}
		}
	}
}

func TestLoaderDeterministicAndSeeded(t *testing.T) {
	mixPath := testMix(t, []float64{2, 1}, []*testSrc{shortDocs(0, 200), shortDocs(1, 80)}, 4<<10)
	run := func(seed uint64) []uint32 {
		l := open(t, mixPath, LoaderOptions{SeqLen: 31, BatchSize: 3, Seed: seed})
		var out []uint32
		buf := make([]uint32, l.BatchTokens())
		for range 50 {
			if err := l.Next(buf); err != nil {
				t.Fatal(err)
			}
			out = append(out, buf...)
		}
		return out
	}
	a, b, c := run(1), run(1), run(2)
	if !bytes.Equal(u32bytes(a), u32bytes(b)) {
		t.Fatal("same seed, different batches")
	}
	if bytes.Equal(u32bytes(a), u32bytes(c)) {
		t.Fatal("different seeds, same batches")
	}
}

// TestLoaderWeights checks a mix where one source is tiny and repeats many
// times: rows follow the weights and the tiny source's epochs turn.
func TestLoaderWeights(t *testing.T) {
	weights := []float64{0.6, 0.3, 0.1}
	srcs := []*testSrc{shortDocs(0, 400), shortDocs(1, 300), shortDocs(2, 20)}
	l := open(t, testMix(t, weights, srcs, 8<<10), LoaderOptions{SeqLen: 127, BatchSize: 8, Seed: 3})
	buf := make([]uint32, l.BatchTokens())
	count := make([]int, 3)
	for range 200 {
		if err := l.Next(buf); err != nil {
			t.Fatal(err)
		}
		for _, r := range rows(buf, 128) {
			count[decodeRow(t, srcs, r, true).src]++
		}
	}
	for i, w := range weights {
		if d := float64(count[i]) - w*1600; math.Abs(d) > 1 {
			t.Fatalf("source %d: %d rows, want %.0f", i, count[i], w*1600)
		}
		if int64(count[i]*128) != l.SourceTokens()[i] {
			t.Fatalf("source %d: %d rows seen, loader counted %d tokens", i, count[i], l.SourceTokens()[i])
		}
	}
	if e := l.SourceEpochs()[2]; e < 5 {
		t.Fatalf("tiny source in epoch %d, want several repeats", e)
	}
}

// TestLoaderResume saves the state before every batch of a run that
// crosses windows and epochs, with a validation split, and checks that a
// fresh loader restored from it yields exactly the rest.
func TestLoaderResume(t *testing.T) {
	srcs := []*testSrc{shortDocs(0, 40), longDocs(1, 3, 600), shortDocs(2, 6)}
	mixPath := testMix(t, []float64{0.5, 0.3, 0.2}, srcs, 2<<10)
	opt := LoaderOptions{SeqLen: 20, BatchSize: 3, Seed: 11, Window: 40, ValFraction: 0.1}
	const N = 150
	ref := open(t, mixPath, opt)
	if sp := ref.Splits(); sp[0] != SplitSamples || sp[1] != SplitSamples {
		t.Fatalf("splits %v", sp)
	}
	buf := make([]uint32, ref.BatchTokens())
	var want [][]uint32
	var states [][]byte
	for range N {
		st, err := ref.State()
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, st)
		if err := ref.Next(buf); err != nil {
			t.Fatal(err)
		}
		want = append(want, append([]uint32(nil), buf...))
	}
	if e := ref.SourceEpochs(); e[2] < 2 || e[0] < 1 {
		t.Fatalf("epochs %v: run does not cross epochs", e)
	}
	for i := range N {
		if len(states[i]) > 1024 {
			t.Fatalf("state is %d bytes, want small", len(states[i]))
		}
		l := open(t, mixPath, opt)
		if err := l.Restore(states[i]); err != nil {
			t.Fatalf("restore at %d: %v", i, err)
		}
		for j := i; j < min(N, i+15); j++ {
			if err := l.Next(buf); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(u32bytes(buf), u32bytes(want[j])) {
				t.Fatalf("restored at batch %d: batch %d differs", i, j)
			}
		}
	}
	// Another SeqLen or seed changes the samples: refused.
	for _, o := range []LoaderOptions{{SeqLen: 21, BatchSize: 3, Seed: 11, Window: 40, ValFraction: 0.1},
		{SeqLen: 20, BatchSize: 3, Seed: 12, Window: 40, ValFraction: 0.1},
		{SeqLen: 20, BatchSize: 3, Seed: 11, Window: 40}} {
		l := open(t, mixPath, o)
		if err := l.Restore(states[5]); err == nil {
			t.Fatalf("restored a state saved with other options (%+v)", o)
		}
	}
	// The batch size only groups rows: one source's rows continue the
	// same with batches of one.
	one := testMix(t, []float64{1}, []*testSrc{shortDocs(0, 100)}, 2<<10)
	o3 := LoaderOptions{SeqLen: 20, BatchSize: 3, Seed: 4, Window: 30}
	a := open(t, one, o3)
	for range 7 {
		a.Next(buf)
	}
	st, _ := a.State()
	a.Next(buf)
	o1 := o3
	o1.BatchSize = 1
	b := open(t, one, o1)
	if err := b.Restore(st); err != nil {
		t.Fatal(err)
	}
	var got []uint32
	for range 3 {
		row := make([]uint32, 21)
		b.Next(row)
		got = append(got, row...)
	}
	if !bytes.Equal(u32bytes(got), u32bytes(buf)) {
		t.Fatal("restored with another batch size: the rows differ")
	}
}

func u32bytes(v []uint32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = append(b, byte(x), byte(x>>8), byte(x>>16), byte(x>>24))
	}
	return b
}

// TestLoaderRanks checks that in an epoch the ranks see disjoint samples
// that together are exactly the samples of a one-rank loader.
func TestLoaderRanks(t *testing.T) {
	src := shortDocs(0, 300)
	mixPath := testMix(t, []float64{1}, []*testSrc{src}, 4<<10)
	// A sample is named by its first non-EOT token and where it sits.
	key := func(row []uint32) string {
		ri := decodeRow(t, []*testSrc{src}, row, true)
		return fmt.Sprint(ri.first, ri.firstAt)
	}
	all := map[string]bool{}
	for _, r := range epochRows(t, open(t, mixPath, LoaderOptions{SeqLen: 33, BatchSize: 1, Seed: 5, Window: 100}))() {
		all[key(r)] = true
	}
	const world = 3
	owner := map[string]int{}
	for rank := range world {
		rs := epochRows(t, open(t, mixPath, LoaderOptions{SeqLen: 33, BatchSize: 1, Seed: 5, Window: 100, Rank: rank, World: world}))()
		if len(rs) < len(all)/world-10 || len(rs) > len(all)/world+10 {
			t.Fatalf("rank %d: %d of %d samples", rank, len(rs), len(all))
		}
		for _, r := range rs {
			k := key(r)
			if o, ok := owner[k]; ok {
				t.Fatalf("sample %s read by ranks %d and %d", k, o, rank)
			}
			if !all[k] {
				t.Fatalf("rank %d read sample %s, which the one-rank epoch does not have", rank, k)
			}
			owner[k] = rank
		}
	}
	if len(owner) != len(all) {
		t.Fatalf("ranks together read %d of %d samples", len(owner), len(all))
	}
	m, _ := LoadMix(mixPath)
	if _, err := NewLoader(m, LoaderOptions{SeqLen: 9, BatchSize: 1, Rank: 3, World: 3}); err == nil {
		t.Fatal("rank 3 of 3 accepted")
	}
}

func TestLoaderValSplitDocuments(t *testing.T) {
	src := shortDocs(0, 400)
	mixPath := testMix(t, []float64{1}, []*testSrc{src}, 4<<10)
	nHeld := 0
	for d := range 400 {
		if IsHeldOut(src.id(d), 0.2) {
			nHeld++
		}
	}
	if nHeld < 50 || nHeld > 110 {
		t.Fatalf("%d of 400 held out at 0.2", nHeld)
	}
	for _, val := range []bool{false, true} {
		l := open(t, mixPath, LoaderOptions{SeqLen: 99, BatchSize: 2, Seed: 1, ValFraction: 0.2, Val: val})
		if sp := l.Splits()[0]; sp != SplitDocuments {
			t.Fatalf("split %s, want documents", sp)
		}
		buf := make([]uint32, l.BatchTokens())
		docs := map[int]bool{}
		for range 60 {
			if err := l.Next(buf); err != nil {
				t.Fatal(err)
			}
			for _, r := range rows(buf, 100) {
				for d := range decodeRow(t, []*testSrc{src}, r, true).docs {
					docs[d] = true
					if IsHeldOut(src.id(d), 0.2) != val {
						t.Fatalf("val=%v loader yielded document %d", val, d)
					}
				}
			}
		}
		if len(docs) < 30 {
			t.Fatalf("val=%v: only %d documents", val, len(docs))
		}
	}
	m, _ := LoadMix(mixPath)
	if _, err := NewLoader(m, LoaderOptions{SeqLen: 9, BatchSize: 1, Val: true}); err == nil {
		t.Fatal("Val without ValFraction accepted")
	}
}

// TestLoaderValSplitSamples: a source of three long books cannot hold out
// documents; it holds out chunks, and no held-out token is ever trained on.
func TestLoaderValSplitSamples(t *testing.T) {
	const seq = 16
	books := longDocs(0, 3, 5000)
	mixPath := testMix(t, []float64{1}, []*testSrc{books}, 8<<10)
	chunk := HeldOutChunk * seq
	held := func(r tokRef) bool {
		return IsHeldOutChunk(books.id(r.doc), r.pos/chunk*chunk, 0.05)
	}
	seen := map[bool]int{}
	for _, val := range []bool{false, true} {
		l := open(t, mixPath, LoaderOptions{SeqLen: seq, BatchSize: 4, Seed: 1, ValFraction: 0.05, Val: val})
		if sp := l.Splits()[0]; sp != SplitSamples {
			t.Fatalf("split %s, want samples", sp)
		}
		buf := make([]uint32, l.BatchTokens())
		for range 300 {
			if err := l.Next(buf); err != nil {
				t.Fatal(err)
			}
			for _, r := range rows(buf, seq+1) {
				for _, tr := range decodeRow(t, []*testSrc{books}, r, false).toks {
					if held(tr) != val {
						t.Fatalf("val=%v loader yielded %v (held out: %v)", val, tr, held(tr))
					}
					seen[val]++
				}
			}
		}
	}
	if seen[true] == 0 || seen[false] == 0 {
		t.Fatalf("tokens seen %v", seen)
	}
	// A split that leaves a source nothing is an error naming it, not a hang.
	tiny := testMix(t, []float64{1}, []*testSrc{newTestSrc(0, []int{40})}, 0)
	frac := 0.0
	for frac = 0.001; ; frac *= 1.5 { // the largest fraction that holds none of it out
		if IsHeldOutChunk("s0/0", 0, frac*1.5) || IsHeldOutChunk("s0/0", chunk, frac*1.5) {
			break
		}
	}
	l := open(t, tiny, LoaderOptions{SeqLen: seq, BatchSize: 1, ValFraction: frac, Val: true})
	if err := l.Next(make([]uint32, seq+1)); err == nil || !strings.Contains(err.Error(), `"s0"`) {
		t.Fatalf("want an error naming the source, got %v", err)
	}
}

func TestLoaderBadBuffer(t *testing.T) {
	l := open(t, testMix(t, []float64{1}, []*testSrc{shortDocs(0, 10)}, 0), LoaderOptions{SeqLen: 8, BatchSize: 2})
	if err := l.Next(make([]uint32, 10)); err == nil {
		t.Fatal("short buffer accepted")
	}
}

// TestLoaderShardErrors damages shards and manifests and checks that the
// errors name the file.
func TestLoaderShardErrors(t *testing.T) {
	setup := func(t *testing.T) (string, *Manifest) {
		dir := filepath.Join(t.TempDir(), "src")
		makeTokenDir(t, dir, 0, 50, 2<<10)
		m, err := ReadManifest(dir)
		if err != nil {
			t.Fatal(err)
		}
		return dir, m
	}
	readAllFrom := func(dir string) error {
		m, err := OpenMixDir(dir)
		if err != nil {
			return err
		}
		l, err := NewLoader(m, LoaderOptions{SeqLen: 64, BatchSize: 4, Window: 10})
		if err != nil {
			return err
		}
		buf := make([]uint32, l.BatchTokens())
		for l.SourceEpochs()[0] == 0 {
			if err := l.Next(buf); err != nil {
				return err
			}
		}
		return nil
	}
	t.Run("ok", func(t *testing.T) {
		dir, _ := setup(t)
		if err := readAllFrom(dir); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("sha256", func(t *testing.T) {
		dir, m := setup(t)
		p := filepath.Join(dir, m.Shards[1].Name)
		b, _ := os.ReadFile(p)
		b[len(b)/2] ^= 0xff
		os.WriteFile(p, b, 0o644)
		err := readAllFrom(dir)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "sha256") {
			t.Fatalf("want a sha256 error naming %s, got %v", p, err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		dir, m := setup(t)
		p := filepath.Join(dir, m.Shards[2].Name)
		b, _ := os.ReadFile(p)
		os.WriteFile(p, b[:len(b)-100], 0o644)
		err := readAllFrom(dir)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("want a truncation error naming %s, got %v", p, err)
		}
		// Truncated and re-listed with the matching checksum: the Arrow
		// reader must still fail cleanly, naming the file.
		info := m.Shards[2]
		info.SHA256, info.Bytes, _ = FileSHA256(p)
		if _, err := ReadTokenShard(p, &info, testVocab); err == nil || !strings.Contains(err.Error(), p) {
			t.Fatalf("want an error naming %s, got %v", p, err)
		}
	})
	t.Run("outside", func(t *testing.T) {
		dir, m := setup(t)
		m.Shards[0].Name = "../elsewhere.arrow"
		if err := WriteManifest(dir, m); err != nil {
			t.Fatal(err)
		}
		err := readAllFrom(dir)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, ManifestName)) || !strings.Contains(err.Error(), "outside") {
			t.Fatalf("want an error naming the manifest, got %v", err)
		}
	})
	t.Run("vocab", func(t *testing.T) {
		dir, m := setup(t)
		// The shards hold ids up to testEOT; claim a smaller vocabulary.
		m.Tokenizer.VocabSize = 2 << 20
		m.Tokenizer.EOT = 5
		if err := WriteManifest(dir, m); err != nil {
			t.Fatal(err)
		}
		err := readAllFrom(dir)
		if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "outside the vocabulary") {
			t.Fatalf("want an out-of-vocabulary error naming the shard, got %v", err)
		}
	})
	t.Run("documents", func(t *testing.T) {
		dir := t.TempDir()
		writeDocDir(t, dir, interopDocs(3), 0)
		if _, err := OpenMixDir(dir); err == nil || !strings.Contains(err.Error(), "not tokens") {
			t.Fatalf("document shards accepted as tokens: %v", err)
		}
	})
}

// BenchmarkLoader measures loader throughput from token shards (uint16,
// documents of 50-1000 tokens; uncompressed, or zstd with
// SMELT_BENCH_TOKEN_COMPRESSION=zstd), including reading, verifying and
// decoding every shard once per epoch (two windows of about 4096 samples).
func BenchmarkLoader(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "src")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	tok := TokenizerInfo{Name: "bench", RanksHash: "r", VocabSize: 50257, EOT: 50256}
	w, err := NewTokenWriter(dir, TokenWriterOptions{Tokenizer: tok, TargetBytes: 4 << 20, Compression: os.Getenv("SMELT_BENCH_TOKEN_COMPRESSION")})
	if err != nil {
		b.Fatal(err)
	}
	r := newSplitMix(1, 2, 3)
	var total int64
	toks := make([]uint32, 0, 1024)
	for d := 0; total < 8<<20; d++ {
		n := 50 + int(r.bounded(950))
		toks = toks[:0]
		for i := 0; i < n; i++ {
			// Zipf-ish ids compress like real text, not like noise.
			v := r.next()
			toks = append(toks, uint32((v>>40)%uint64(1+(v&0xffff)))%50256)
		}
		toks = append(toks, 50256)
		if err := w.Write(fmt.Sprintf("bench/%d", d), "bench", toks); err != nil {
			b.Fatal(err)
		}
		total += int64(len(toks))
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	if err := WriteManifest(dir, &Manifest{Kind: KindTokens, Shards: w.Shards(), Totals: SumShards(w.Shards()), Tokenizer: &tok}); err != nil {
		b.Fatal(err)
	}
	m, err := OpenMixDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	l, err := NewLoader(m, LoaderOptions{SeqLen: 1024, BatchSize: 8, Seed: 1, Window: 4096})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]uint32, l.BatchTokens())
	b.SetBytes(int64(len(buf)) * 4)
	cpu0 := cpuSeconds()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := l.Next(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	ntok := float64(b.N) * float64(len(buf))
	b.ReportMetric(ntok/b.Elapsed().Seconds()/1e6, "Mtok/s")
	// Per CPU-second of the whole process (GC included): the per-core
	// figure, which stays meaningful on a machine shared with other work.
	b.ReportMetric(ntok/(cpuSeconds()-cpu0)/1e6, "Mtok/cpu-s")
}

// cpuSeconds is the user+system CPU time this process has used.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// TestOpenTraining: validation loaders are probed; a split that leaves a
// source nothing costs the validation loss, not the run, and then nothing
// is held out of training.
func TestOpenTraining(t *testing.T) {
	books := testMix(t, []float64{1, 1}, []*testSrc{longDocs(0, 3, 3000), shortDocs(1, 300)}, 8<<10)
	m, _ := LoadMix(books)
	tl, vl, err := OpenTraining(m, LoaderOptions{SeqLen: 16, BatchSize: 4, ValFraction: 0.1})
	if err != nil || vl == nil {
		t.Fatalf("val loader %v, %v", vl, err)
	}
	if sp := vl.Splits(); sp[0] != SplitSamples || sp[1] != SplitDocuments {
		t.Fatalf("splits %v", sp)
	}
	if tl.Options().ValFraction != 0.1 || tl.Options().Val || !vl.Options().Val {
		t.Fatalf("options %+v %+v", tl.Options(), vl.Options())
	}
	tl, vl, err = OpenTraining(m, LoaderOptions{SeqLen: 16, BatchSize: 4})
	if err != nil || vl != nil || tl.Splits()[0] != SplitNone {
		t.Fatalf("val fraction 0: val loader %v, splits %v, %v", vl, tl.Splits(), err)
	}
	// One document of 40 tokens: at 0.001 nothing is held out.
	tiny := testMix(t, []float64{1}, []*testSrc{newTestSrc(0, []int{40})}, 0)
	m, _ = LoadMix(tiny)
	tl, vl, err = OpenTraining(m, LoaderOptions{SeqLen: 16, BatchSize: 1, ValFraction: 0.001})
	if err != nil || vl != nil || tl.Options().ValFraction != 0 {
		t.Fatalf("empty split: val loader %v, train holds out %v, %v", vl, tl.Options().ValFraction, err)
	}
	// Beside a source that has held-out data, the empty one is left out of
	// validation only.
	both := testMix(t, []float64{1, 3}, []*testSrc{newTestSrc(0, []int{40}), longDocs(1, 3, 30000)}, 0)
	m, _ = LoadMix(both)
	tl, vl, err = OpenTraining(m, LoaderOptions{SeqLen: 16, BatchSize: 2, ValFraction: 0.001})
	if err != nil || vl == nil || len(vl.Mix().Sources) != 1 || vl.Mix().Sources[0].Name != "s1" || vl.Mix().Sources[0].Weight != 1 {
		t.Fatalf("validation over the source with held-out data: %v %v", vl, err)
	}
	if tl.Options().ValFraction != 0.001 || len(tl.Mix().Sources) != 2 {
		t.Fatalf("training loader %+v", tl.Options())
	}
	if err := vl.Next(make([]uint32, vl.BatchTokens())); err != nil {
		t.Fatal(err)
	}
}
