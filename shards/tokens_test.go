package shards

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// byteEncoder is a stand-in tokenizer for tests: one id per byte, and 256
// is the end-of-text id.
type byteEncoder struct{}

func (byteEncoder) Name() string        { return "bytes" }
func (byteEncoder) VocabSize() int      { return 257 }
func (byteEncoder) EOT() (uint32, bool) { return 256, true }
func (byteEncoder) RanksHash() string   { return "bytes-v1" }
func (byteEncoder) AppendEncodeOrdinary(dst []uint32, text string) []uint32 {
	for i := 0; i < len(text); i++ {
		dst = append(dst, uint32(text[i]))
	}
	return dst
}

func writeDocDir(t testing.TB, dir string, docs []*Document, target int64) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := NewDocWriter(dir, DocWriterOptions{TargetBytes: target})
	for _, d := range docs {
		if err := w.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := WriteManifest(dir, &Manifest{Kind: KindDocuments, Stage: "test", Shards: w.Shards(), Totals: SumShards(w.Shards())}); err != nil {
		t.Fatal(err)
	}
}

// readTokenDir reads every row of a token directory in manifest order.
func readTokenDir(t testing.TB, dir string) (m *Manifest, ids, srcs []string, toks [][]uint32) {
	t.Helper()
	m, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m.Shards {
		info := s
		ts, err := ReadTokenShard(filepath.Join(dir, s.Name), &info, m.Tokenizer.VocabSize)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for i := 0; i < ts.Rows(); i++ {
			ids = append(ids, ts.ID(i))
			srcs = append(srcs, ts.Source(i))
			toks = append(toks, ts.AppendTokens(nil, i, 0, ts.Len(i)))
			n += int64(ts.Len(i))
		}
		if n != s.Tokens || int64(ts.Rows()) != s.Rows {
			t.Fatalf("%s: %d rows %d tokens, manifest says %d, %d", s.Name, ts.Rows(), n, s.Rows, s.Tokens)
		}
	}
	return m, ids, srcs, toks
}

func dirFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func TestTokenizeWritesTokenShards(t *testing.T) {
	root := t.TempDir()
	docs := interopDocs(400)
	docs[5].Text = "" // dropped as empty
	in := filepath.Join(root, "docs")
	writeDocDir(t, in, docs, 32<<10)
	var outs []string
	for _, workers := range []int{1, 3} {
		out := filepath.Join(root, fmt.Sprint("tok", workers))
		st, err := Tokenize(context.Background(), TokenizeConfig{Inputs: []string{in}, Out: out, Encoder: byteEncoder{}, Workers: workers, TargetBytes: 16 << 10})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Balanced(); err != nil {
			t.Fatal(err)
		}
		if st.Dropped[DropEmpty].Docs != 1 || st.Out.Docs != 399 {
			t.Fatalf("stats: out %d, empty %d", st.Out.Docs, st.Dropped[DropEmpty].Docs)
		}
		outs = append(outs, out)
	}
	sameTree(t, outs[0], outs[1])

	m, ids, srcs, toks := readTokenDir(t, outs[0])
	if m.Kind != KindTokens || m.Stage != "tokenize" || m.Tokenizer == nil || *m.Tokenizer != (TokenizerInfo{Name: "bytes", RanksHash: "bytes-v1", VocabSize: 257, EOT: 256}) {
		t.Fatalf("manifest: %+v tokenizer %+v", m, m.Tokenizer)
	}
	if len(m.Shards) < 3 {
		t.Fatalf("want several shards, got %d", len(m.Shards))
	}
	// Every kept document comes back as its bytes plus EOT, in input order,
	// and the per-source counts add up.
	wantSrc := map[string]Totals{}
	k := 0
	for i, d := range docs {
		if d.Text == "" {
			continue
		}
		want := append([]uint32(nil), byteEncoder{}.AppendEncodeOrdinary(nil, d.Text)...)
		want = append(want, 256)
		if ids[k] != d.ID || srcs[k] != d.Source || fmt.Sprint(toks[k]) != fmt.Sprint(want) {
			t.Fatalf("row %d (doc %d): %s %s, %d tokens, want %s %s, %d", k, i, ids[k], srcs[k], len(toks[k]), d.ID, d.Source, len(want))
		}
		s := wantSrc[d.Source]
		s.Rows++
		s.Tokens += int64(len(want))
		s.DataBytes += int64(len(d.Text))
		wantSrc[d.Source] = s
		k++
	}
	if k != len(ids) {
		t.Fatalf("%d rows, want %d", len(ids), k)
	}
	if fmt.Sprint(m.Sources) != fmt.Sprint(wantSrc) {
		t.Fatalf("sources %v, want %v", m.Sources, wantSrc)
	}
	if m.Totals.Rows != int64(k) || m.Totals.Tokens != SumShards(m.Shards).Tokens {
		t.Fatalf("totals %+v", m.Totals)
	}
	if len(m.Inputs) != 1 || m.Inputs[0].Records != 400 || m.Inputs[0].Documents != 399 {
		t.Fatalf("inputs %+v", m.Inputs)
	}

	if m.Compression != TokenCompressionNone {
		t.Fatalf("manifest compression %q, want none by default", m.Compression)
	}

	// A rerun reuses the finished output; another tokenizer refuses it.
	if _, err := Tokenize(context.Background(), TokenizeConfig{Inputs: []string{in}, Out: outs[0], Encoder: byteEncoder{}, TargetBytes: 16 << 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := Tokenize(context.Background(), TokenizeConfig{Inputs: []string{in}, Out: outs[0], Encoder: byteEncoder{}, Source: "x", TargetBytes: 16 << 10}); err == nil {
		t.Fatal("a different run reused the output")
	}
	// So does another compression; zstd writes other bytes, the same
	// rows, and the same files whatever the worker count.
	if _, err := Tokenize(context.Background(), TokenizeConfig{Inputs: []string{in}, Out: outs[0], Encoder: byteEncoder{}, TargetBytes: 16 << 10, Compression: TokenCompressionZstd}); err == nil {
		t.Fatal("a zstd run reused an uncompressed output")
	}
	if _, err := Tokenize(context.Background(), TokenizeConfig{Inputs: []string{in}, Out: filepath.Join(root, "bad"), Encoder: byteEncoder{}, Compression: "lz4"}); err == nil || !strings.Contains(err.Error(), `"lz4"`) {
		t.Fatalf("compression lz4: %v", err)
	}
	var zouts []string
	for _, workers := range []int{1, 3} {
		out := filepath.Join(root, fmt.Sprint("zstd", workers))
		if _, err := Tokenize(context.Background(), TokenizeConfig{Inputs: []string{in}, Out: out, Encoder: byteEncoder{}, Workers: workers, TargetBytes: 16 << 10, Compression: TokenCompressionZstd}); err != nil {
			t.Fatal(err)
		}
		zouts = append(zouts, out)
	}
	sameTree(t, zouts[0], zouts[1])
	zm, zids, zsrcs, ztoks := readTokenDir(t, zouts[0])
	if zm.Compression != TokenCompressionZstd || zm.Fingerprint == m.Fingerprint {
		t.Fatalf("zstd manifest: compression %q, fingerprint %s (uncompressed: %s)", zm.Compression, zm.Fingerprint, m.Fingerprint)
	}
	if fmt.Sprint(zids, zsrcs, ztoks) != fmt.Sprint(ids, srcs, toks) {
		t.Fatal("zstd shards read back other rows than uncompressed ones")
	}
	if zm.Totals.Bytes >= m.Totals.Bytes || zm.Totals.DataBytes != m.Totals.DataBytes {
		t.Fatalf("zstd shards %d bytes (%d of data), uncompressed %d (%d)", zm.Totals.Bytes, zm.Totals.DataBytes, m.Totals.Bytes, m.Totals.DataBytes)
	}
}

func TestTokenizeSourceOverride(t *testing.T) {
	root := t.TempDir()
	in := filepath.Join(root, "docs")
	writeDocDir(t, in, interopDocs(30), 0)
	out := filepath.Join(root, "tok")
	if _, err := Tokenize(context.Background(), TokenizeConfig{Inputs: []string{in}, Out: out, Encoder: byteEncoder{}, Source: "books"}); err != nil {
		t.Fatal(err)
	}
	m, _, srcs, _ := readTokenDir(t, out)
	for _, s := range srcs {
		if s != "books" {
			t.Fatalf("source %q", s)
		}
	}
	if len(m.Sources) != 1 || m.Sources["books"].Rows != 30 {
		t.Fatalf("sources %v", m.Sources)
	}
}

// TestTokenizeOnlySource checks that OnlySource tokenizes exactly the
// documents of one source, in input order, that the others count nowhere,
// that the output does not depend on the workers, that a run stopped
// midway resumes to the same bytes, and that it is part of the fingerprint.
func TestTokenizeOnlySource(t *testing.T) {
	root := t.TempDir()
	in := filepath.Join(root, "docs")
	docs := interopDocs(300)
	docs[4].Text = "" // an empty wiki document: dropped, and counted
	writeDocDir(t, in, docs, 20<<10)
	var wantIDs []string
	var wantBytes int64
	for _, d := range docs {
		if d.Source == "wiki" && d.Text != "" {
			wantIDs = append(wantIDs, d.ID)
			wantBytes += int64(len(d.Text))
		}
	}
	cfg := TokenizeConfig{Inputs: []string{in}, Encoder: byteEncoder{}, OnlySource: "wiki", Source: "wiki", TargetBytes: 8 << 10}
	ref := filepath.Join(root, "ref")
	c := cfg
	c.Out, c.Workers = ref, 1
	st, err := Tokenize(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	m, ids, srcs, _ := readTokenDir(t, ref)
	if strings.Join(ids, ",") != strings.Join(wantIDs, ",") {
		t.Fatalf("ids: got %d, want %d (%v...)", len(ids), len(wantIDs), ids[:min(3, len(ids))])
	}
	for _, s := range srcs {
		if s != "wiki" {
			t.Fatalf("source %q", s)
		}
	}
	if len(m.Sources) != 1 || m.Sources["wiki"].Rows != int64(len(wantIDs)) || m.Sources["wiki"].DataBytes != wantBytes {
		t.Fatalf("sources %+v", m.Sources)
	}
	if st.In.Docs != 100 || st.Out.Docs != int64(len(wantIDs)) || st.Dropped[DropEmpty].Docs != 1 {
		t.Fatalf("stats: in %d out %d dropped %v", st.In.Docs, st.Out.Docs, st.Dropped)
	}
	if err := st.Balanced(); err != nil {
		t.Fatal(err)
	}
	if len(m.Inputs) != 1 || m.Inputs[0].Records != 100 || m.Inputs[0].Documents != int64(len(wantIDs)) {
		t.Fatalf("inputs %+v", m.Inputs)
	}

	c.Out, c.Workers = filepath.Join(root, "w3"), 3
	if _, err := Tokenize(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	sameTree(t, ref, c.Out)

	// Stopped midway (after shards were published) and resumed.
	for _, stopAt := range []int64{2, 150, 290} {
		out := filepath.Join(root, fmt.Sprint("stop", stopAt))
		ctx, cancel := context.WithCancel(context.Background())
		c := cfg
		c.Out, c.Workers = out, 2
		var lastBytes int64
		c.Progress = func(docs, bytes, _, _ int64) {
			if bytes < lastBytes {
				t.Errorf("progress went back: %d after %d", bytes, lastBytes)
			}
			lastBytes = bytes
			if docs == stopAt {
				cancel()
			}
		}
		if _, err := Tokenize(ctx, c); !errors.Is(err, context.Canceled) {
			t.Fatalf("stop at %d: %v", stopAt, err)
		}
		cancel()
		c.Progress = func(_, bytes, _, total int64) { lastBytes = bytes }
		if _, err := Tokenize(context.Background(), c); err != nil {
			t.Fatalf("resume after %d: %v", stopAt, err)
		}
		if r, _ := OpenDocDirs(in); lastBytes != r.TotalDataBytes() {
			t.Errorf("resumed progress ends at %d bytes of %d", lastBytes, r.TotalDataBytes())
		}
		sameTree(t, ref, out)
	}

	// Another source, or none, is another run.
	c = cfg
	c.Out, c.OnlySource = ref, "books"
	if _, err := Tokenize(context.Background(), c); err == nil {
		t.Fatal("a run for another source reused the output")
	}
}

// TestTokenizeResumesAfterKill stops a run at many points (as kill -9
// would: after some shards were published, with a half-written shard and
// a temp file left behind) and checks the rerun ends byte-identical.
func TestTokenizeResumesAfterKill(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	root := t.TempDir()
	in := filepath.Join(root, "docs")
	writeDocDir(t, in, interopDocs(300), 20<<10)
	ref := filepath.Join(root, "ref")
	cfg := TokenizeConfig{Inputs: []string{in}, Encoder: byteEncoder{}, Workers: 2, TargetBytes: 8 << 10}
	c := cfg
	c.Out = ref
	if _, err := Tokenize(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	nShards := len(dirFiles(t, ref)) - 2
	for _, stopAt := range []int64{1, 17, 60, 150, 299} {
		out := filepath.Join(root, fmt.Sprint("run", stopAt))
		ctx, cancel := context.WithCancel(context.Background())
		c := cfg
		c.Out = out
		c.Progress = func(docs, _, _, _ int64) {
			if docs == stopAt {
				cancel()
			}
		}
		if _, err := Tokenize(ctx, c); !errors.Is(err, context.Canceled) {
			t.Fatalf("stop at %d: %v", stopAt, err)
		}
		cancel()
		// Debris a killed process leaves: a temp file and an unlisted shard.
		os.WriteFile(filepath.Join(out, ".part-00099.arrow.tmp-123"), []byte("partial"), 0o644)
		os.WriteFile(filepath.Join(out, ShardName("part", 98)), []byte("unlisted"), 0o644)
		c.Progress = nil
		if _, err := Tokenize(context.Background(), c); err != nil {
			t.Fatalf("resume after %d: %v", stopAt, err)
		}
		sameTree(t, ref, out)
	}
	if nShards < 4 {
		t.Fatalf("only %d shards: cut points not exercised", nShards)
	}
}

func TestTokenWriterRejectsOutOfVocab(t *testing.T) {
	w, err := NewTokenWriter(t.TempDir(), TokenWriterOptions{Tokenizer: TokenizerInfo{Name: "t", VocabSize: 100, EOT: 99}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if err := w.Write("d1", "s", []uint32{1, 2, 100}); err == nil || !strings.Contains(err.Error(), "d1") {
		t.Fatalf("want an error naming the document, got %v", err)
	}
}

// TestTokenizeRealText tokenizes real public-domain text (Tiny Shakespeare
// and the King James Bible from ../shared/data) split into documents, and
// checks that every byte comes back.
func TestTokenizeRealText(t *testing.T) {
	data := filepath.Join("..", "..", "shared", "data", "clean_text")
	if _, err := os.Stat(data); err != nil {
		t.Skipf("shared test data not found at %s (it lives beside the repository): %v", data, err)
	}
	docs := realDocs(t, data, 1<<20)
	root := t.TempDir()
	in := filepath.Join(root, "docs")
	writeDocDir(t, in, docs, 256<<10)
	out := filepath.Join(root, "tok")
	if _, err := Tokenize(context.Background(), TokenizeConfig{Inputs: []string{in}, Out: out, Encoder: byteEncoder{}, TargetBytes: 512 << 10}); err != nil {
		t.Fatal(err)
	}
	m, ids, _, toks := readTokenDir(t, out)
	var textBytes int64
	for i, d := range docs {
		if ids[i] != d.ID || len(toks[i]) != len(d.Text)+1 {
			t.Fatalf("doc %d mismatch", i)
		}
		textBytes += int64(len(d.Text))
	}
	if m.Totals.Tokens != textBytes+int64(len(docs)) {
		t.Fatalf("%d tokens for %d bytes in %d docs", m.Totals.Tokens, textBytes, len(docs))
	}
}

// realDocs cuts the shared clean text files into documents of about 2-8
// KiB at paragraph boundaries, up to limit bytes per file.
func realDocs(t testing.TB, dir string, limit int) []*Document {
	t.Helper()
	var docs []*Document
	for _, f := range []struct{ name, src string }{
		{"tinyshakespeare.txt", "shakespeare"},
		{"debian_bible-kjv-text_4.38_kjv.txt.gz", "kjv"},
		{"wikitext-2_valid.txt", "wikitext"},
	} {
		fh, err := os.Open(filepath.Join(dir, f.name))
		if err != nil {
			t.Fatal(err)
		}
		var r *bufio.Reader = bufio.NewReader(fh)
		if strings.HasSuffix(f.name, ".gz") {
			gz, err := gzip.NewReader(fh)
			if err != nil {
				t.Fatal(err)
			}
			r = bufio.NewReader(gz)
		}
		var cur strings.Builder
		total := 0
		n := 0
		for total < limit {
			line, err := r.ReadString('\n')
			cur.WriteString(line)
			total += len(line)
			if (cur.Len() > 2048+(n%4)*2048 && strings.TrimSpace(line) == "") || cur.Len() > 16384 || (err != nil && cur.Len() > 0) {
				docs = append(docs, &Document{ID: fmt.Sprintf("%s/%05d", f.src, n), Source: f.src, Text: cur.String()})
				cur.Reset()
				n++
			}
			if err != nil {
				break
			}
		}
		fh.Close()
	}
	return docs
}

// TestTokenShardCorruption damages a token shard at many offsets. With its
// manifest entry every flipped byte is caught by the checksum before Arrow
// sees it; truncated files are rejected even without one. Either way the
// error names the file.
//
// Unverified reads of arbitrarily corrupted files are not covered: Arrow
// Go trusts the lengths inside the file's flatbuffer metadata and can try
// to allocate whatever they claim, which is why the loader always verifies
// sha256 first.
func TestTokenShardCorruption(t *testing.T) {
	for _, comp := range []string{TokenCompressionNone, TokenCompressionZstd} {
		t.Run(comp, func(t *testing.T) { testTokenShardCorruption(t, comp) })
	}
}

func testTokenShardCorruption(t *testing.T, comp string) {
	dir := t.TempDir()
	tok := TokenizerInfo{Name: "t", VocabSize: 1000, EOT: 999}
	w, err := NewTokenWriter(dir, TokenWriterOptions{Tokenizer: tok, BatchRows: 7, Compression: comp})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		toks := make([]uint32, i%13+1)
		for j := range toks {
			toks[j] = uint32(i*31+j) % 999
		}
		if err := w.Write(fmt.Sprint("d", i), "s", toks); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	info := w.Shards()[0]
	path := filepath.Join(dir, info.Name)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := newSplitMix(9, 9, 9)
	for k := 0; k < 300; k++ {
		data := append([]byte(nil), orig...)
		truncated := k%2 == 0
		if truncated {
			data = data[:r.bounded(uint64(len(data)))]
		} else {
			for n := 0; n < 1+k%4; n++ {
				data[r.bounded(uint64(len(data)))] ^= byte(1 + r.bounded(255))
			}
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadTokenShard(path, &info, 1000)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("damaged shard read: %v", err)
		}
		if truncated {
			if _, err := ReadTokenShard(path, nil, 1000); err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("truncated shard (%d of %d bytes) read without checksum: %v", len(data), len(orig), err)
			}
		}
	}
}
