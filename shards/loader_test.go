package shards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Test token directories use a wide vocabulary so that every token can
// say where it comes from: a document is [code, code+1, ..., EOT] where
// code = (source+1)<<20 | doc<<8, so the stream can be cut back into
// documents and each checked whole.
const (
	testVocab = 1 << 23
	testEOT   = testVocab - 1
)

func docCode(src, doc int) uint32 { return uint32((src+1)<<20 | doc<<8) }

func testDocTokens(src, doc, n int) []uint32 {
	toks := make([]uint32, n+1)
	for i := 0; i < n; i++ {
		toks[i] = docCode(src, doc) + uint32(i)
	}
	toks[n] = testEOT
	return toks
}

// docLen gives documents varied lengths, from 1 to 200 tokens, EOT excluded.
func docLen(src, doc int) int { return 1 + (doc*37+src*11)%200 }

// makeTokenDir writes a token directory of ndocs documents for source src.
func makeTokenDir(t testing.TB, dir string, src, ndocs int, target int64) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tok := TokenizerInfo{Name: "test", RanksHash: "r", VocabSize: testVocab, EOT: testEOT}
	w, err := NewTokenWriter(dir, TokenWriterOptions{Tokenizer: tok, TargetBytes: target, BatchRows: 64})
	if err != nil {
		t.Fatal(err)
	}
	for d := 0; d < ndocs; d++ {
		if err := w.Write(fmt.Sprintf("s%d/%d", src, d), fmt.Sprint("s", src), testDocTokens(src, d, docLen(src, d))); err != nil {
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

// testMix writes sources with the given document counts and a mix file.
func testMix(t testing.TB, weights []float64, ndocs []int, target int64) string {
	t.Helper()
	root := t.TempDir()
	var yml strings.Builder
	yml.WriteString("sources:\n")
	for i := range weights {
		makeTokenDir(t, filepath.Join(root, fmt.Sprint("src", i)), i, ndocs[i], target)
		fmt.Fprintf(&yml, "  - {name: s%d, path: src%d, weight: %v}\n", i, i, weights[i])
	}
	path := filepath.Join(root, "mix.yaml")
	if err := os.WriteFile(path, []byte(yml.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// docRef identifies a document by source and index.
type docRef struct{ src, doc int }

// splitDocs cuts a token stream at EOTs and checks every complete piece is
// one whole document; it returns the documents in order. The first piece
// may be a document's tail and the last its head; they are checked as such.
func splitDocs(t *testing.T, stream []uint32) (docs []docRef, tokensBySrc map[int]int) {
	t.Helper()
	tokensBySrc = map[int]int{}
	start := 0
	for i := 0; i <= len(stream); i++ {
		if i < len(stream) && stream[i] != testEOT {
			continue
		}
		piece := stream[start:i]
		start = i + 1
		if len(piece) == 0 {
			if i < len(stream) {
				t.Fatalf("empty document at %d", i)
			}
			continue
		}
		code := piece[0] &^ 0xff
		src, doc := int(code>>20)-1, int(code>>8&0xfff)
		first := int(piece[0] & 0xff)
		for j, v := range piece {
			if v != piece[0]+uint32(j) {
				t.Fatalf("token %d of a document is %x, want %x: documents interleaved", j, v, piece[0]+uint32(j))
			}
		}
		complete := i < len(stream)
		isFirst := i-len(piece) == 0
		tokensBySrc[src] += len(piece)
		if complete {
			tokensBySrc[src]++
		}
		// Only the stream's first piece may start mid-document, and only
		// its last may end early.
		if !isFirst && first != 0 {
			t.Fatalf("document s%d/%d starts at token %d", src, doc, first)
		}
		if complete && first+len(piece) != docLen(src, doc) {
			t.Fatalf("document s%d/%d: ends after %d tokens, want %d", src, doc, first+len(piece), docLen(src, doc))
		}
		if complete && first == 0 {
			docs = append(docs, docRef{src, doc})
		}
	}
	return docs, tokensBySrc
}

func drain(t *testing.T, l *Loader, batches int) []uint32 {
	t.Helper()
	var out []uint32
	buf := make([]uint32, l.BatchTokens())
	for i := 0; i < batches; i++ {
		if err := l.Next(buf); err != nil {
			t.Fatal(err)
		}
		out = append(out, buf...)
	}
	return out
}

func TestLoaderOneEpochHasEveryDocumentOnce(t *testing.T) {
	mixPath := testMix(t, []float64{1}, []int{500}, 4<<10)
	m, err := LoadMix(mixPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Sources[0].Manifest.Shards) < 8 {
		t.Fatalf("want many shards, got %d", len(m.Sources[0].Manifest.Shards))
	}
	total := m.Sources[0].Tokens()
	l, err := NewLoader(m, LoaderOptions{SeqLen: 63, BatchSize: 4, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	// Read three epochs' worth; each epoch, taken alone, must hold every
	// document exactly once, in a different order.
	batches := int(3*total)/l.BatchTokens() + 1
	stream := drain(t, l, batches)
	var orders [][]docRef
	for e := 0; e < 3; e++ {
		docs, _ := splitDocs(t, stream[int64(e)*total:int64(e+1)*total])
		seen := map[int]bool{}
		for _, d := range docs {
			if seen[d.doc] {
				t.Fatalf("epoch %d: document %d twice", e, d.doc)
			}
			seen[d.doc] = true
		}
		if len(seen) != 500 {
			t.Fatalf("epoch %d: %d distinct documents, want 500", e, len(seen))
		}
		orders = append(orders, docs)
	}
	if fmt.Sprint(orders[0]) == fmt.Sprint(orders[1]) {
		t.Fatal("epochs 0 and 1 have the same order: not re-shuffled")
	}
	inOrder := 0
	for i := 1; i < len(orders[0]); i++ {
		if orders[0][i].doc == orders[0][i-1].doc+1 {
			inOrder++
		}
	}
	if inOrder > 50 {
		t.Fatalf("%d of 500 documents follow their predecessor: not shuffled", inOrder)
	}
	if got := l.SourceEpochs()[0]; got != 3 {
		t.Fatalf("in epoch %d, want 3", got)
	}
}

func TestLoaderDeterministicAndSeeded(t *testing.T) {
	mixPath := testMix(t, []float64{2, 1}, []int{200, 80}, 4<<10)
	run := func(seed uint64) []uint32 {
		m, err := LoadMix(mixPath)
		if err != nil {
			t.Fatal(err)
		}
		l, err := NewLoader(m, LoaderOptions{SeqLen: 31, BatchSize: 3, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		return drain(t, l, 50)
	}
	a, b, c := run(1), run(1), run(2)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("same seed, different batches")
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Fatal("different seeds, same batches")
	}
}

// TestLoaderWeights checks that each source contributes its weight's share
// of the tokens, to within a document, even when one source is tiny and
// repeats many times.
func TestLoaderWeights(t *testing.T) {
	weights := []float64{0.6, 0.3, 0.1}
	mixPath := testMix(t, weights, []int{400, 300, 20}, 8<<10)
	m, err := LoadMix(mixPath)
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLoader(m, LoaderOptions{SeqLen: 127, BatchSize: 8, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	stream := drain(t, l, 200)
	_, bySrc := splitDocs(t, stream)
	for i, w := range weights {
		want := w * float64(len(stream))
		if d := float64(bySrc[i]) - want; d > 201 || d < -201 {
			t.Fatalf("source %d: %d tokens, want %.0f ± one document", i, bySrc[i], want)
		}
		if int64(bySrc[i]) != l.SourceTokens()[i] {
			t.Fatalf("source %d: stream has %d tokens, loader counted %d", i, bySrc[i], l.SourceTokens()[i])
		}
	}
	if e := l.SourceEpochs()[2]; e < 5 {
		t.Fatalf("tiny source in epoch %d, want several repeats", e)
	}
}

// TestLoaderResume saves the state after every batch of a run that crosses
// shard windows and epochs, with sequences that end mid-document, and
// checks that a fresh loader restored from it yields exactly the rest.
func TestLoaderResume(t *testing.T) {
	mixPath := testMix(t, []float64{0.5, 0.3, 0.2}, []int{30, 20, 4}, 2<<10)
	opt := LoaderOptions{SeqLen: 50, BatchSize: 2, Seed: 11, Window: 2, ValFraction: 0.1}
	newL := func() *Loader {
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
	const N = 150
	ref := newL()
	buf := make([]uint32, ref.BatchTokens())
	var want [][]uint32
	var states [][]byte
	for i := 0; i < N; i++ {
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
	midDoc := 0
	for i := 0; i < N; i++ {
		var st struct{ Cur curDoc }
		if err := json.Unmarshal(states[i], &st); err != nil {
			t.Fatal(err)
		}
		if st.Cur.Src >= 0 && st.Cur.Off > 0 {
			midDoc++
		}
		if len(states[i]) > 1024 {
			t.Fatalf("state is %d bytes, want small", len(states[i]))
		}
		l := newL()
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
	if midDoc < N/2 {
		t.Fatalf("only %d of %d cut points fall mid-document", midDoc, N)
	}
	// The state is a stream position: a loader with another batch geometry
	// continues the same token stream.
	geo := opt
	geo.SeqLen, geo.BatchSize = 16, 1 // 17 tokens a batch; 6 batches = one batch of the reference
	for _, i := range []int{0, 7, 64, 133} {
		m, _ := LoadMix(mixPath)
		l, err := NewLoader(m, geo)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Restore(states[i]); err != nil {
			t.Fatal(err)
		}
		got := drain(t, l, 6)
		if !bytes.Equal(u32bytes(got), u32bytes(want[i])) {
			t.Fatalf("restored at %d with another batch geometry: the token stream differs", i)
		}
	}
	// A state from other options is refused.
	other := opt
	other.Seed = 12
	m, _ := LoadMix(mixPath)
	l, _ := NewLoader(m, other)
	if err := l.Restore(states[5]); err == nil {
		t.Fatal("restored a state saved with another seed")
	}
}

func u32bytes(v []uint32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = append(b, byte(x), byte(x>>8), byte(x>>16), byte(x>>24))
	}
	return b
}

// TestLoaderRanks checks that ranks see disjoint documents that together
// make up every document, epoch by epoch.
func TestLoaderRanks(t *testing.T) {
	mixPath := testMix(t, []float64{1}, []int{300}, 4<<10)
	const world = 3
	m, err := LoadMix(mixPath)
	if err != nil {
		t.Fatal(err)
	}
	owner := map[int]int{}
	for rank := 0; rank < world; rank++ {
		l, err := NewLoader(m, LoaderOptions{SeqLen: 99, BatchSize: 1, Seed: 5, Rank: rank, World: world})
		if err != nil {
			t.Fatal(err)
		}
		// Each rank gets about a third of the tokens of one epoch.
		// Documents that end before the batch in which the epoch turns all
		// belong to epoch 0.
		var stream []uint32
		buf := make([]uint32, l.BatchTokens())
		before := 0
		for l.SourceEpochs()[0] == 0 {
			before = len(stream)
			if err := l.Next(buf); err != nil {
				t.Fatal(err)
			}
			stream = append(stream, buf...)
		}
		docs, _ := splitDocs(t, stream[:before])
		for _, d := range docs {
			if o, ok := owner[d.doc]; ok && o != rank {
				t.Fatalf("document %d read by ranks %d and %d", d.doc, o, rank)
			}
			owner[d.doc] = rank
		}
	}
	if len(owner) < 290 {
		t.Fatalf("ranks together read %d of 300 documents in an epoch", len(owner))
	}
	if _, err := NewLoader(m, LoaderOptions{SeqLen: 9, BatchSize: 1, Rank: 3, World: 3}); err == nil {
		t.Fatal("rank 3 of 3 accepted")
	}
}

func TestLoaderValSplit(t *testing.T) {
	mixPath := testMix(t, []float64{1}, []int{400}, 4<<10)
	m, err := LoadMix(mixPath)
	if err != nil {
		t.Fatal(err)
	}
	held := map[int]bool{}
	for d := 0; d < 400; d++ {
		held[d] = IsHeldOut(fmt.Sprintf("s0/%d", d), 0.2)
	}
	nHeld := 0
	for _, h := range held {
		if h {
			nHeld++
		}
	}
	if nHeld < 50 || nHeld > 110 {
		t.Fatalf("%d of 400 held out at 0.2", nHeld)
	}
	for _, val := range []bool{false, true} {
		l, err := NewLoader(m, LoaderOptions{SeqLen: 99, BatchSize: 2, Seed: 1, ValFraction: 0.2, Val: val})
		if err != nil {
			t.Fatal(err)
		}
		docs, _ := splitDocs(t, drain(t, l, 30))
		for _, d := range docs {
			if held[d.doc] != val {
				t.Fatalf("val=%v loader yielded document %d (held out: %v)", val, d.doc, held[d.doc])
			}
		}
	}
	if _, err := NewLoader(m, LoaderOptions{SeqLen: 9, BatchSize: 1, Val: true}); err == nil {
		t.Fatal("Val without ValFraction accepted")
	}
	// A split that leaves a source no documents is an error naming it, not a hang.
	tiny, err := LoadMix(testMix(t, []float64{1}, []int{3}, 0))
	if err != nil {
		t.Fatal(err)
	}
	frac := 0.0
	for frac = 0.001; ; frac *= 1.5 { // the largest fraction that holds none of the 3 out
		if IsHeldOut("s0/0", frac*1.5) || IsHeldOut("s0/1", frac*1.5) || IsHeldOut("s0/2", frac*1.5) {
			break
		}
	}
	if IsHeldOut("s0/0", frac) || IsHeldOut("s0/1", frac) || IsHeldOut("s0/2", frac) {
		t.Fatal("no empty split found")
	}
	l, err := NewLoader(tiny, LoaderOptions{SeqLen: 9, BatchSize: 1, ValFraction: frac, Val: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Next(make([]uint32, 10)); err == nil || !strings.Contains(err.Error(), `"s0"`) {
		t.Fatalf("want an error naming the source, got %v", err)
	}
}

func TestLoaderBadBuffer(t *testing.T) {
	m, err := LoadMix(testMix(t, []float64{1}, []int{10}, 0))
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLoader(m, LoaderOptions{SeqLen: 8, BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
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
		l, err := NewLoader(m, LoaderOptions{SeqLen: 64, BatchSize: 4, Window: 100})
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

// BenchmarkLoader measures loader throughput from zstd token shards
// (uint16, documents of 50-1000 tokens), including reading, verifying and
// decoding every shard once per epoch.
func BenchmarkLoader(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "src")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	tok := TokenizerInfo{Name: "bench", RanksHash: "r", VocabSize: 50257, EOT: 50256}
	w, err := NewTokenWriter(dir, TokenWriterOptions{Tokenizer: tok, TargetBytes: 4 << 20})
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
	l, err := NewLoader(m, LoaderOptions{SeqLen: 1024, BatchSize: 8, Seed: 1, Window: 2})
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
