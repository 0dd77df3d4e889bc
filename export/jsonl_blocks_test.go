package export

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
)

// blockCounts records, per output directory, the blocks each JSONL export
// copied and compressed.
var blockCounts sync.Map // out dir -> [2]int64{copied, encoded}

func init() {
	jsonlBlocksDone = func(out string, copied, encoded int64) {
		blockCounts.Store(out, [2]int64{copied, encoded})
	}
}

func countsOf(t testing.TB, out string) (copied, encoded int64) {
	t.Helper()
	v, ok := blockCounts.Load(out)
	if !ok {
		t.Fatalf("no block counts recorded for %s", out)
	}
	c := v.([2]int64)
	return c[0], c[1]
}

var (
	textPoolOnce sync.Once
	textPool     []byte
)

// realText is the real prose of ../shared/data/clean_text, concatenated
// (skipping the test when it is absent).
func realText(t testing.TB) []byte {
	t.Helper()
	files := []string{"clean_text/wikitext-2_valid.txt", "clean_text/wikitext-2_test.txt", "clean_text/tinyshakespeare.txt",
		"clean_text/minbpe_taylorswift_wikipedia.txt", "clean_text/debian_jargon-text_4.4.7_jargon.txt.gz", "clean_text/debian_bible-kjv-text_4.38_kjv.txt.gz"}
	var paths []string
	for _, f := range files {
		paths = append(paths, testutil.SharedData(t, f))
	}
	textPoolOnce.Do(func() {
		var buf bytes.Buffer
		for _, p := range paths {
			f, err := os.Open(p)
			if err != nil {
				panic(err)
			}
			var r io.Reader = f
			if strings.HasSuffix(p, ".gz") {
				zr, err := gzip.NewReader(f)
				if err != nil {
					panic(err)
				}
				r = zr
			}
			if _, err := io.Copy(&buf, r); err != nil {
				panic(err)
			}
			f.Close()
		}
		textPool = buf.Bytes()
	})
	return textPool
}

// webDocs makes n documents of real text: consecutive windows of
// realText, cut at line ends, of log-normal lengths around median bytes
// (web pages' text is about that skewed), with ids, URLs, dates and meta
// shaped like an ingest's. The text repeats only after the ~10 MB pool.
func webDocs(t testing.TB, n, median int, seed uint64) []*shards.Document {
	pool := realText(t)
	rng := rand.New(rand.NewPCG(seed, 7))
	docs := make([]*shards.Document, 0, n)
	off := 0
	for i := range n {
		size := int(float64(median) * math.Exp(rng.NormFloat64()))
		size = min(max(size, 64), 200_000)
		if off+size > len(pool) {
			off = 0
		}
		end := off + size
		if j := bytes.IndexByte(pool[end:], '\n'); j >= 0 && j < 4096 {
			end += j + 1
		}
		text := strings.ToValidUTF8(string(pool[off:end]), "\uFFFD")
		off = end
		h := sha256.Sum256(fmt.Appendf(nil, "%d/%d", seed, i))
		id := "cc-" + hex.EncodeToString(h[:10])
		host := fmt.Sprintf("site%d.example.org", rng.IntN(n/4+1))
		docs = append(docs, &shards.Document{
			ID: id, Source: "cc", URL: "https://" + host + "/" + hex.EncodeToString(h[10:16]),
			Date: fmt.Sprintf("2024-%02d-%02dT%02d:00:00Z", 1+i%12, 1+i%28, i%24), Lang: "en", LangScore: 0.9 + float64(i%10)/100,
			Quality: float64(i%100) / 100, HasQuality: i%3 != 0, Text: text,
			Meta: fmt.Sprintf(`{"warc_record_id":"<urn:uuid:%x>","http_status":200}`, h[16:24]),
		})
	}
	return docs
}

// partition cuts docs into shards of about target bytes.
func partition(docs []*shards.Document, target int64) [][]*shards.Document {
	var out [][]*shards.Document
	var cur []*shards.Document
	var n int64
	for _, d := range docs {
		cur = append(cur, d)
		n += shards.DocBytes(d)
		if n >= target {
			out, cur, n = append(out, cur), nil, 0
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// writeShards writes one document shard per group (less the removed
// documents) with its manifest: a takedown's reduced shards keep the
// original shards' names.
func writeShards(t testing.TB, dir string, groups [][]*shards.Document, removed map[string]bool) {
	t.Helper()
	parts := make([][]*shards.Document, len(groups))
	for i, g := range groups {
		for _, d := range g {
			if !removed[d.ID] {
				parts[i] = append(parts[i], d)
			}
		}
	}
	writeCutDocDir(t, dir, parts)
}

func openDocInput(t testing.TB, dir string) []*Input {
	t.Helper()
	in, err := OpenInput("cc", dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	return []*Input{in}
}

// blockIDs lists the blocks (as their documents' ids) that an export of
// groups writes, by the cut rule alone (no block here reaches the cap).
func blockIDs(groups [][]*shards.Document, removed map[string]bool) []string {
	var out []string
	for _, g := range groups {
		var cur []string
		for _, d := range g {
			if removed[d.ID] {
				continue
			}
			cur = append(cur, d.ID)
			if jsonlCutAfter(d.ID, jsonlBlockDocs) {
				out, cur = append(out, strings.Join(cur, ",")), nil
			}
		}
		if len(cur) > 0 {
			out = append(out, strings.Join(cur, ","))
		}
	}
	return out
}

// expectEncoded is how many blocks of the reduced export are not blocks
// of the original: what an export with Reuse must compress.
func expectEncoded(groups [][]*shards.Document, removed map[string]bool) (encoded, total int) {
	old := map[string]bool{}
	for _, b := range blockIDs(groups, nil) {
		old[b] = true
	}
	nb := blockIDs(groups, removed)
	for _, b := range nb {
		if !old[b] {
			encoded++
		}
	}
	return encoded, len(nb)
}

// takedownCase is a set of documents to remove.
type takedownCase struct {
	name    string
	removed map[string]bool
	// encoded, if not -1, is the number of blocks that must be compressed
	// (the rest are copied): locality, stated independently of the
	// simulation in expectEncoded.
	encoded int
}

func takedownCases(groups [][]*shards.Document) []takedownCase {
	ids := func(ds ...*shards.Document) map[string]bool {
		m := map[string]bool{}
		for _, d := range ds {
			m[d.ID] = true
		}
		return m
	}
	var all []*shards.Document
	for _, g := range groups {
		all = append(all, g...)
	}
	// A cut point inside a shard (not its first document), and the
	// whole block after it (not the shard's last block).
	var g []*shards.Document
	cut, blockStart, blockEnd := -1, -1, -1
	for k := range groups {
		g = groups[(len(groups)/2+k)%len(groups)]
		cut, blockStart, blockEnd = -1, -1, -1
		for i, d := range g[:len(g)-1] {
			if !jsonlCutAfter(d.ID, jsonlBlockDocs) || i == 0 {
				continue
			}
			if cut < 0 {
				cut, blockStart = i, i+1
			} else {
				blockEnd = i + 1
				break
			}
		}
		if blockEnd > 0 {
			break
		}
	}
	random := func(frac float64, seed uint64) map[string]bool {
		rng := rand.New(rand.NewPCG(seed, 1))
		m := map[string]bool{}
		for _, d := range all {
			if rng.Float64() < frac {
				m[d.ID] = true
			}
		}
		return m
	}
	first := 1
	if jsonlCutAfter(all[0].ID, jsonlBlockDocs) {
		first = 0 // the first block held only it
	}
	cases := []takedownCase{
		{"none", map[string]bool{}, 0},
		{"first document", ids(all[0]), first},
		{"random 1%", random(0.01, 1), -1},
		{"random 10%", random(0.10, 2), -1},
	}
	if cut >= 0 && blockEnd > 0 {
		cases = append(cases,
			takedownCase{"a cut point", ids(g[cut]), 1},
			takedownCase{"a whole block", ids(g[blockStart:blockEnd]...), 0})
	}
	if g := groups[1]; len(g) > 1 {
		want := 1
		if jsonlCutAfter(g[0].ID, jsonlBlockDocs) {
			want = 0 // the one left was a block of its own
		}
		cases = append(cases, takedownCase{"a shard but one document", ids(g[1:]...), want})
	}
	return cases
}

// TestJSONLReuseMatchesFreshExport removes documents from real-text
// shards the way a takedown does, and checks that exporting the reduced
// shards with Reuse of the first export writes the same bytes (every
// file and export.json) as exporting them afresh, while compressing only
// the blocks that changed.
func TestJSONLReuseMatchesFreshExport(t *testing.T) {
	docs := webDocs(t, 700, 300, 1)
	groups := partition(docs, 90<<10)
	if len(groups) < 4 {
		t.Fatalf("%d shards; the test wants several", len(groups))
	}
	root := t.TempDir()
	origIn := filepath.Join(root, "orig")
	writeShards(t, origIn, groups, nil)
	cases := takedownCases(groups)
	if len(cases) < 7 {
		t.Fatalf("only %d cases: no block in the middle shard to remove", len(cases))
	}
	comps := []string{"zstd", "gzip"}
	for _, comp := range comps {
		base := filepath.Join(root, comp)
		export(t, openDocInput(t, origIn), base, Options{Format: FormatJSONL, Compression: comp})
		if _, enc := countsOf(t, base); enc < int64(len(groups))*2 {
			t.Fatalf("%s: the first export wrote %d blocks for %d shards", comp, enc, len(groups))
		}
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(root, fmt.Sprint(i))
			in := filepath.Join(dir, "in")
			writeShards(t, in, groups, c.removed)
			want, total := expectEncoded(groups, c.removed)
			if c.encoded >= 0 && want != c.encoded {
				t.Fatalf("the cut rule gives %d new blocks, the case expects %d", want, c.encoded)
			}
			for _, comp := range comps {
				opt := Options{Format: FormatJSONL, Compression: comp}
				fresh, reused := filepath.Join(dir, comp+"-fresh"), filepath.Join(dir, comp+"-reused")
				export(t, openDocInput(t, in), fresh, opt)
				opt.Reuse = &Reuse{Dir: filepath.Join(root, comp)}
				export(t, openDocInput(t, in), reused, opt)
				sameExportDirs(t, fresh, reused, "jsonl")
				copied, encoded := countsOf(t, reused)
				if encoded != int64(want) || copied+encoded != int64(total) {
					t.Fatalf("%s: copied %d and compressed %d blocks; want %d compressed of %d", comp, copied, encoded, want, total)
				}
				t.Logf("%s: %d of %d blocks copied", comp, copied, total)
			}
		})
	}
}

// TestJSONLReuseOfCorruptEarlierFiles damages the earlier export's files
// (with and without fixing the sha256 export.json records for them) and
// checks that the export with Reuse still writes the fresh export's
// bytes, copying from the undamaged files.
func TestJSONLReuseOfCorruptEarlierFiles(t *testing.T) {
	docs := webDocs(t, 900, 400, 2)
	groups := partition(docs, 48<<10)
	if len(groups) < 7 {
		t.Fatalf("%d shards; the test wants 7", len(groups))
	}
	root := t.TempDir()
	origIn, in := filepath.Join(root, "orig"), filepath.Join(root, "in")
	writeShards(t, origIn, groups, nil)
	removed := map[string]bool{}
	for i, d := range docs {
		if i%97 == 5 {
			removed[d.ID] = true
		}
	}
	writeShards(t, in, groups, removed)
	for _, comp := range []string{"zstd", "gzip"} {
		t.Run(comp, func(t *testing.T) {
			opt := Options{Format: FormatJSONL, Compression: comp}
			base, fresh, reused := filepath.Join(root, comp, "base"), filepath.Join(root, comp, "fresh"), filepath.Join(root, comp, "reused")
			p := export(t, openDocInput(t, origIn), base, opt)
			export(t, openDocInput(t, in), fresh, opt)

			name := func(i int) string { return filepath.Join(base, p.Files[i].Name) }
			edit := func(i int, fn func([]byte) []byte, fixSum bool) {
				b, err := os.ReadFile(name(i))
				if err != nil {
					t.Fatal(err)
				}
				b = fn(b)
				if err := os.WriteFile(name(i), b, 0o644); err != nil {
					t.Fatal(err)
				}
				if fixSum {
					s := sha256.Sum256(b)
					p.Files[i].SHA256 = hex.EncodeToString(s[:])
				}
			}
			flip := func(at func(n int) int) func([]byte) []byte {
				return func(b []byte) []byte { b[at(len(b))] ^= 0x40; return b }
			}
			edit(0, flip(func(n int) int { return n / 2 }), false)
			edit(1, flip(func(n int) int { return n / 2 }), true)
			edit(2, func(b []byte) []byte { return b[:len(b)/2] }, true)
			if err := os.Remove(name(3)); err != nil {
				t.Fatal(err)
			}
			edit(4, func(b []byte) []byte {
				rng := rand.New(rand.NewPCG(4, 4))
				for i := range b {
					b[i] = byte(rng.Uint32())
				}
				return b
			}, true)
			edit(5, flip(func(int) int { return 4 }), true) // the first frame's header
			edit(6, func(b []byte) []byte { return append(b, b[:len(b)/3]...) }, true)
			data, err := json.MarshalIndent(p, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(base, SidecarName), data, 0o644); err != nil {
				t.Fatal(err)
			}

			opt.Reuse = &Reuse{Dir: base}
			export(t, openDocInput(t, in), reused, opt)
			sameExportDirs(t, fresh, reused, "jsonl")
			copied, encoded := countsOf(t, reused)
			want, total := expectEncoded(groups, removed)
			if copied == 0 || encoded <= int64(want) || copied+encoded != int64(total) {
				t.Fatalf("copied %d, compressed %d of %d blocks; want some copied, and more than the %d changed compressed", copied, encoded, total, want)
			}
			t.Logf("copied %d, compressed %d of %d blocks (%d changed)", copied, encoded, total, want)
		})
	}
}

// TestZstdFrameEnd checks the frame walk on the encoder's own frames, for
// every width of the content size field, concatenated.
func TestZstdFrameEnd(t *testing.T) {
	enc, err := newBlockEncoder("zstd")
	if err != nil {
		t.Fatal(err)
	}
	pool := realText(t)
	var file []byte
	var sizes []int
	for _, n := range []int{0, 1, 255, 256, 300, 65791, 65792, 200_000, 1 << 20} {
		b, err := enc.encode(pool[:n])
		if err != nil {
			t.Fatal(err)
		}
		end, hdr, err := zstdFrameEnd(b)
		if err != nil || end != len(b) || hdr < 6 || hdr > 14 {
			t.Fatalf("%d bytes: frame end %d, header %d bytes, err %v; want %d", n, end, hdr, err, len(b))
		}
		if _, _, err := zstdFrameEnd(b[:len(b)-1]); err == nil {
			t.Fatalf("%d bytes: a cut frame walked without error", n)
		}
		file = append(file, b...)
		sizes = append(sizes, n)
	}
	eb := &earlierBlocks{data: file, blocks: map[[32]byte]span{}}
	if err := eb.zstdFrames(enc); err != nil {
		t.Fatal(err)
	}
	for _, n := range sizes {
		if _, ok := eb.find(pool[:n]); !ok {
			t.Fatalf("the %d-byte block was not found", n)
		}
	}
}

// jsonlLines renders documents as the export's JSONL lines.
func jsonlLines(t testing.TB, docs []*shards.Document) [][]byte {
	t.Helper()
	out := make([][]byte, len(docs))
	for i, d := range docs {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		doc := dolmaDoc(d)
		if err := enc.Encode(&doc); err != nil {
			t.Fatal(err)
		}
		out[i] = b.Bytes()
	}
	return out
}

// cutBlocks groups the documents not in removed into blocks by the cut
// rule with k documents per block on average (k = 0: one block).
func cutBlocks(docs []*shards.Document, lines [][]byte, removed map[string]bool, k uint64) [][]byte {
	var out [][]byte
	var cur []byte
	for i, d := range docs {
		if removed[d.ID] {
			continue
		}
		cur = append(cur, lines[i]...)
		if k > 0 && (jsonlCutAfter(d.ID, k) || len(cur) >= jsonlBlockCap) {
			out, cur = append(out, cur), nil
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// TestJSONLBlockTradeoff measures, for documents per block K, the
// compressed size of real text against one stream per file (what smelt
// wrote before blocks) and the share of a file compressed again after a
// random 1% removal. A measurement, not a check: run with
// SMELT_JSONL_TRADEOFF=1 go test ./export/ -run JSONLBlockTradeoff -v
func TestJSONLBlockTradeoff(t *testing.T) {
	if os.Getenv("SMELT_JSONL_TRADEOFF") == "" {
		t.Skip("a measurement: set SMELT_JSONL_TRADEOFF=1")
	}
	docs := webDocs(t, 3000, 2000, 3)
	lines := jsonlLines(t, docs)
	var raw int
	for _, l := range lines {
		raw += len(l)
	}
	streamSize := func(comp string) int {
		var buf bytes.Buffer
		var w io.WriteCloser
		if comp == "gzip" {
			w = kgzipWriter(&buf)
		} else {
			zw, err := zstdStream(&buf)
			if err != nil {
				t.Fatal(err)
			}
			w = zw
		}
		for _, l := range lines {
			w.Write(l)
		}
		w.Close()
		return buf.Len()
	}
	zs, gs := streamSize("zstd"), streamSize("gzip")
	t.Logf("%d documents, %.1f MB of JSONL; one stream: zstd %.2f MB (%.3f of raw), gzip %.2f MB", len(docs), float64(raw)/1e6, float64(zs)/1e6, float64(zs)/float64(raw), float64(gs)/1e6)
	t.Logf("%5s %9s %10s %10s %22s", "K", "block KB", "zstd/one", "gzip/one", "1% removal: recompress")
	zenc, _ := newBlockEncoder("zstd")
	genc, _ := newBlockEncoder("gzip")
	for _, k := range []uint64{4, 8, 16, 32, 64, 128, 256} {
		blocks := cutBlocks(docs, lines, nil, k)
		var z, g int
		for _, b := range blocks {
			zb, _ := zenc.encode(b)
			gb, _ := genc.encode(b)
			z, g = z+len(zb), g+len(gb)
		}
		// The share of the uncompressed bytes in blocks that a random 1%
		// removal changes, averaged over 10 draws.
		var redo float64
		for seed := range uint64(10) {
			rng := rand.New(rand.NewPCG(seed, k))
			removed := map[string]bool{}
			for _, d := range docs {
				if rng.Float64() < 0.01 {
					removed[d.ID] = true
				}
			}
			old := map[string]bool{}
			for _, b := range blocks {
				old[string(b)] = true
			}
			var changed, total int
			for _, b := range cutBlocks(docs, lines, removed, k) {
				total += len(b)
				if !old[string(b)] {
					changed += len(b)
				}
			}
			redo += float64(changed) / float64(total) / 10
		}
		t.Logf("%5d %9.1f %10.3f %10.3f %21.1f%%", k, float64(raw)/float64(len(blocks))/1024, float64(z)/float64(zs), float64(g)/float64(gs), 100*redo)
	}
}

// zstdStream and kgzipWriter are the single-stream writers smelt used
// before blocks (the baseline of the measurements).
func zstdStream(w io.Writer) (*zstd.Encoder, error) {
	return zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
}

func kgzipWriter(w io.Writer) io.WriteCloser { return kgzip.NewWriter(w) }

// cpuSeconds is the process's user+system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// TestJSONLTakedownSpeed measures a JSONL export of ~100 MB of documents
// made from real text, then, after a random 1% removal, the export of the
// reduced shards afresh and with Reuse (checking they are the same
// bytes), and the files' size against one stream per file. A
// measurement: SMELT_JSONL_BENCH=1 go test ./export/ -run JSONLTakedownSpeed -v
// (SMELT_JSONL_BENCH_MB sets the size, SMELT_JSONL_BENCH_SHARD_MB the
// shards' (default 8); SMELT_JSONL_BENCH_KEEP=DIR keeps
// the shards in DIR/orig and DIR/in).
func TestJSONLTakedownSpeed(t *testing.T) {
	if os.Getenv("SMELT_JSONL_BENCH") == "" {
		t.Skip("a measurement: set SMELT_JSONL_BENCH=1")
	}
	mb := 100
	if v := os.Getenv("SMELT_JSONL_BENCH_MB"); v != "" {
		fmt.Sscan(v, &mb)
	}
	const median = 2000 // about 3.3 KB a document on average
	docs := webDocs(t, mb<<20/3300, median, 5)
	shardMB := 8.0
	if v := os.Getenv("SMELT_JSONL_BENCH_SHARD_MB"); v != "" {
		fmt.Sscan(v, &shardMB)
	}
	groups := partition(docs, int64(shardMB*(1<<20)))
	rng := rand.New(rand.NewPCG(9, 9))
	removed := map[string]bool{}
	for _, d := range docs {
		if rng.Float64() < 0.01 {
			removed[d.ID] = true
		}
	}
	root := t.TempDir()
	if keep := os.Getenv("SMELT_JSONL_BENCH_KEEP"); keep != "" {
		root = keep // the shards stay, for timing smelt export on them
	}
	origIn, in := filepath.Join(root, "orig"), filepath.Join(root, "in")
	writeShards(t, origIn, groups, nil)
	writeShards(t, in, groups, removed)
	var raw int64
	for _, g := range groups {
		for _, l := range jsonlLines(t, g) {
			raw += int64(len(l))
		}
	}
	// One stream per file, as before blocks.
	stream := map[string]int64{}
	for _, comp := range []string{"zstd", "gzip"} {
		for _, g := range groups {
			var buf bytes.Buffer
			var w io.WriteCloser = kgzipWriter(&buf)
			if comp == "zstd" {
				zw, err := zstdStream(&buf)
				if err != nil {
					t.Fatal(err)
				}
				w = zw
			}
			for _, l := range jsonlLines(t, g) {
				w.Write(l)
			}
			w.Close()
			stream[comp] += int64(buf.Len())
		}
	}
	t.Logf("%d documents in %d shards, %.1f MB of JSONL; %d removed", len(docs), len(groups), float64(raw)/1e6, len(removed))
	docs, groups = nil, nil // not to be scanned by the collector while timing
	// timed exports the input shards in the directory above out, three
	// times, and returns the fastest run's wall and CPU seconds.
	timed := func(out string, opt Options) (wall, cpu float64, bytes int64) {
		wall, cpu = math.Inf(1), math.Inf(1)
		for range 3 {
			os.RemoveAll(out)
			runtime.GC()
			c0, t0 := cpuSeconds(), time.Now()
			p := export(t, openDocInput(t, filepath.Dir(out)), out, opt)
			wall, cpu = min(wall, time.Since(t0).Seconds()), min(cpu, cpuSeconds()-c0)
			bytes = 0
			for _, f := range p.Files {
				bytes += f.Bytes
			}
		}
		return
	}
	for _, comp := range []string{"zstd", "gzip"} {
		opt := Options{Format: FormatJSONL, Compression: comp}
		base := filepath.Join(origIn, comp)
		w0, c0, size := timed(base, opt)
		fresh, reused := filepath.Join(in, comp+"-fresh"), filepath.Join(in, comp+"-reused")
		w1, c1, _ := timed(fresh, opt)
		opt.Reuse = &Reuse{Dir: base}
		w2, c2, _ := timed(reused, opt)
		sameExportDirs(t, fresh, reused, "jsonl")
		copied, encoded := countsOf(t, reused)
		derived := filepath.Join(in, comp+"-derived")
		opt.Reuse = &Reuse{Dir: base, Removed: removed}
		w3, c3, _ := timed(derived, opt)
		sameExportDirs(t, fresh, derived, "jsonl")
		t.Logf("%s: told the removed documents (Reuse.Removed, derived from the earlier files): %.2f s (%.2f CPU-s), %.1fx faster than fresh, %.1fx than Reuse alone",
			comp, w3, c3, w1/w3, w2/w3)
		t.Logf("%s: files %.2f MB in blocks, %.2f MB as one stream per file (%.3fx)", comp, float64(size)/1e6, float64(stream[comp])/1e6, float64(size)/float64(stream[comp]))
		t.Logf("%s: first export %.2f s (%.2f CPU-s); after 1%% removal: fresh %.2f s (%.2f CPU-s), with Reuse %.2f s (%.2f CPU-s), %.1fx faster; %d blocks copied, %d compressed",
			comp, w0, c0, w1, c1, w2, c2, w1/w2, copied, encoded)
	}
}

// TestJSONLBlocksStandardReaders reads block files with the reference
// command-line decoders (zstd -dc reads concatenated frames, gzip -dc
// concatenated members) and with DuckDB's read_json, and checks they see
// exactly the documents smelt exported.
func TestJSONLBlocksStandardReaders(t *testing.T) {
	docs := webDocs(t, 600, 400, 4)
	root := t.TempDir()
	in := filepath.Join(root, "in")
	writeShards(t, in, partition(docs, 64<<10), nil)
	for _, comp := range []string{"zstd", "gzip"} {
		t.Run(comp, func(t *testing.T) {
			out := filepath.Join(root, comp)
			p := export(t, openDocInput(t, in), out, Options{Format: FormatJSONL, Compression: comp})
			if copied, enc := countsOf(t, out); copied != 0 || enc < int64(len(p.Files))*3 {
				t.Fatalf("%d blocks in %d files; the test wants several a file", enc, len(p.Files))
			}
			tool, err := exec.LookPath(comp)
			if err != nil {
				t.Skipf("no %s command: %v", comp, err)
			}
			k := 0
			want := map[string][3]any{} // file -> docs, chars, first id
			for _, f := range p.Files {
				got, err := exec.Command(tool, "-dc", filepath.Join(out, f.Name)).Output()
				if err != nil {
					t.Fatalf("%s -dc %s: %v", comp, f.Name, err)
				}
				exp := bytes.Join(jsonlLines(t, docs[k:k+int(f.Docs)]), nil)
				if !bytes.Equal(got, exp) {
					t.Fatalf("%s -dc %s: %d bytes, want the %d bytes of its %d documents", comp, f.Name, len(got), len(exp), f.Docs)
				}
				var chars int
				for _, d := range docs[k : k+int(f.Docs)] {
					chars += utf8.RuneCountInString(d.Text)
				}
				want[f.Name] = [3]any{f.Docs, chars, docs[k].ID}
				k += int(f.Docs)
			}
			if k != len(docs) {
				t.Fatalf("the files hold %d documents, want %d", k, len(docs))
			}

			dir, err := filepath.Abs(filepath.Join("testdata", "node"))
			if err != nil {
				t.Fatal(err)
			}
			node := testutil.NodePackages(t, dir, "the DuckDB check", "nodejs-polars", "nodejs-polars-linux-x64-gnu", "@duckdb/node-api")
			res, err := exec.CommandContext(testutil.Context(t), node, filepath.Join(dir, "jsonl.mjs"), filepath.Join(out, "*.jsonl.*")).Output()
			if err != nil {
				t.Fatalf("node jsonl.mjs: %v", err)
			}
			lines := strings.Split(strings.TrimSpace(string(res)), "\n")
			if len(lines) != len(p.Files) {
				t.Fatalf("DuckDB read %d files, want %d:\n%s", len(lines), len(p.Files), res)
			}
			for _, l := range lines {
				var r struct {
					File        string
					Docs, Chars int
					MinID       string `json:"min_id"`
				}
				if err := json.Unmarshal([]byte(l), &r); err != nil {
					t.Fatal(err)
				}
				w, ok := want[filepath.Base(r.File)]
				if !ok || int64(r.Docs) != w[0].(int64) || r.Chars != w[1].(int) || r.MinID > w[2].(string) {
					t.Fatalf("DuckDB: %s holds %d documents, %d characters of text; want %v", r.File, r.Docs, r.Chars, w)
				}
			}
		})
	}
}

// TestReuseInputsShareOneName: a run's export has one input per task of a
// source, all named after the source, each with shards part-00000...; the
// earlier file of a shard is the one of the input at the same position
// (keyed by name alone, every input's part-00000 was matched with one
// earlier file, and nothing was copied).
func TestReuseInputsShareOneName(t *testing.T) {
	docs := webDocs(t, 400, 300, 3)
	groups := partition(docs, 60<<10)
	if len(groups) < 4 {
		t.Fatalf("%d shards; the test wants several", len(groups))
	}
	half := len(groups) / 2
	root := t.TempDir()
	inputs := func(sub string, removed map[string]bool) []*Input {
		var ins []*Input
		for i, g := range [][][]*shards.Document{groups[:half], groups[half:]} {
			dir := filepath.Join(root, sub, fmt.Sprint(i))
			writeShards(t, dir, g, removed)
			ins = append(ins, openDocInput(t, dir)...)
		}
		return ins
	}
	removed := map[string]bool{groups[half][3].ID: true, groups[len(groups)-1][0].ID: true}
	for _, format := range []Format{FormatJSONL, FormatParquet} {
		t.Run(string(format), func(t *testing.T) {
			orig := filepath.Join(root, string(format), "orig")
			export(t, inputs(string(format)+"-in-orig", nil), orig, Options{Format: format})
			fresh, reused := filepath.Join(root, string(format), "fresh"), filepath.Join(root, string(format), "reused")
			reduced := inputs(string(format)+"-in-reduced", removed)
			export(t, reduced, fresh, Options{Format: format})
			c0, e0 := ReuseCounts()
			export(t, reduced, reused, Options{Format: format, Reuse: &Reuse{Dir: orig}})
			c1, e1 := ReuseCounts()
			sameExportDirs(t, fresh, reused, string(format))
			// Two documents removed: at most four blocks compressed again
			// (each and the block after it, where it was a cut point).
			if copied, compressed := c1-c0, e1-e0; copied == 0 || compressed > 4 {
				t.Fatalf("copied %d blocks and compressed %d: the earlier files were not matched to their shards", copied, compressed)
			}
		})
	}
}
