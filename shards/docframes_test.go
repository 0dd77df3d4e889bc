package shards

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/klauspost/compress/zstd"
)

// textFrameCounts returns, per record batch of the shard at path, the
// number of zstd frames in its text buffer (0 for an empty or raw one).
func textFrameCounts(t *testing.T, path string) []int {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := openFastDocShard(path, ShardInfo{Bytes: st.Size()}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &docFilter{s: s}
	if err := f.columns(); err != nil {
		t.Fatal(err)
	}
	var counts []int
	for b := range s.blocks {
		if err := f.parse(b); err != nil {
			t.Fatal(err)
		}
		raw := f.raw(f.first[f.textCol] + 2)
		if len(raw) < 8 || int64(binary.LittleEndian.Uint64(raw)) == -1 {
			counts = append(counts, 0)
			continue
		}
		frames, err := walkZstdFrames(raw[8:], nil)
		if err != nil {
			t.Fatalf("%s batch %d: %v", path, b, err)
		}
		counts = append(counts, len(frames))
	}
	return counts
}

// TestTextFramesWritten: the text buffer of a batch is cut into frames as
// the rule says (the ids that hash to 0 mod 16, the byte cap, the batch's
// end), the frames decode to the batch's text, and every reader the other
// tests use reads such files (TestHandIPCReadsLikeArrowGo, the Arrow JS
// and Polars tests run on these same cases: this test makes sure their
// batches do hold several frames).
func TestTextFramesWritten(t *testing.T) {
	dir := t.TempDir()
	for _, c := range docCases(t, true) {
		if c.name != "edge" && c.name != "real" {
			continue
		}
		path := filepath.Join(dir, c.name+".arrow")
		writeDocFile(t, path, true, c.batches, CreateIPCFile)
		counts := textFrameCounts(t, path)
		multi := 0
		for b, docs := range c.batches {
			var want []frameSpan
			var ends []int64
			var pos int64
			for _, d := range docs {
				pos += int64(len(d.Text))
				ends = append(ends, pos)
			}
			want = appendTextFrames(want, len(docs), func(i int) []byte { return []byte(docs[i].ID) }, func(i int) int64 { return ends[i] })
			if counts[b] != len(want) && counts[b] != 0 {
				t.Fatalf("%s batch %d: %d frames, the rule cuts %d", c.name, b, counts[b], len(want))
			}
			if counts[b] > 1 {
				multi++
			}
		}
		if multi == 0 {
			t.Fatalf("%s: no batch has more than one text frame (%v)", c.name, counts)
		}
	}
	// The byte cap: documents whose ids never cut still end a frame once
	// it holds textFrameCap bytes.
	var docs []*Document
	for i := 0; len(docs) < 40; i++ {
		id := fmt.Sprintf("big/%d", i)
		if frameCut([]byte(id)) {
			continue
		}
		docs = append(docs, &Document{ID: id, Text: strings.Repeat(fmt.Sprintf("%d ", i), 40000)})
	}
	path := filepath.Join(dir, "cap.arrow")
	writeDocFile(t, path, false, [][]*Document{docs}, CreateIPCFile)
	var total int
	for _, d := range docs {
		total += len(d.Text)
	}
	if got, min := textFrameCounts(t, path)[0], total/(textFrameCap+len(docs[0].Text)); got < min || got < 2 {
		t.Fatalf("%d bytes without a cutting id: %d frames, want at least %d", total, got, min)
	}
	r, err := OpenDocShard(path)
	if err != nil {
		t.Fatal(err)
	}
	got := drain(t, r)
	r.Close()
	for i := range docs {
		if got[i].Text != docs[i].Text {
			t.Fatalf("row %d read back differently", i)
		}
	}
}

// TestFrameCutRate: about one id in textFrameDocs cuts.
func TestFrameCutRate(t *testing.T) {
	cuts := 0
	const n = 100000
	for i := 0; i < n; i++ {
		if frameCut([]byte(fmt.Sprintf("cc/CC-MAIN-2024-10/%08d", i))) {
			cuts++
		}
	}
	if want := n / textFrameDocs; cuts < want*9/10 || cuts > want*11/10 {
		t.Fatalf("%d of %d ids cut, want about %d", cuts, n, want)
	}
}

// TestWalkZstdFrames: the walker finds exactly the frames EncodeAll wrote
// (with their sizes), skips skippable frames, and refuses truncated or
// foreign bytes without panicking.
func TestWalkZstdFrames(t *testing.T) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var buf []byte
	var sizes []int64
	for _, n := range []int{1, 200, 255, 256, 70000, 65536 + 256, 300000, 5, 2 << 20} {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte('a' + rng.IntN(3))
		}
		buf = enc.EncodeAll(p, buf)
		sizes = append(sizes, int64(n))
	}
	skip := []byte{0x50, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 1, 2, 3}
	frames, err := walkZstdFrames(append(bytes.Clone(buf), skip...), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != len(sizes) {
		t.Fatalf("%d frames, wrote %d", len(frames), len(sizes))
	}
	dec, _ := zstd.NewReader(nil)
	for k, f := range frames {
		if f.content != sizes[k] && (f.content != -1 || sizes[k] >= 256) {
			t.Fatalf("frame %d: content %d, wrote %d", k, f.content, sizes[k])
		}
		out, err := dec.DecodeAll(buf[f.lo:f.hi], nil)
		if err != nil || int64(len(out)) != sizes[k] {
			t.Fatalf("frame %d: decodes to %d bytes, %v", k, len(out), err)
		}
	}
	for cut := 1; cut < len(buf); cut += 1 + cut/3 {
		if _, err := walkZstdFrames(buf[:cut], nil); err == nil && cut != frames[len(frames)-1].lo && !frameEnd(frames, cut) {
			t.Fatalf("truncated at %d: no error", cut)
		}
	}
	if _, err := walkZstdFrames([]byte("not a zstd frame at all"), nil); err == nil {
		t.Fatal("foreign bytes: no error")
	}
}

func frameEnd(frames []zstdFrame, at int) bool {
	for _, f := range frames {
		if f.hi == at {
			return true
		}
	}
	return false
}

// filterCase writes batches to a shard, filters out the rows remove picks
// and checks that the result is byte for byte a fresh write of the kept
// rows in the same batches (a batch left empty dropped).
func filterCase(t *testing.T, what string, dropped bool, batches [][]*Document, remove func(*Document) bool,
	open func(string, *ShardInfo) error) filterStats {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.arrow")
	var srcInfo ShardInfo
	if err := open(src, &srcInfo); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	var keptBatches [][]*Document
	var wantRows, wantRemoved, wantData int64
	for _, docs := range batches {
		var kept []*Document
		for _, d := range docs {
			if remove(d) {
				ids[d.ID] = true
				wantRemoved++
				continue
			}
			kept = append(kept, d)
			wantRows++
			wantData += DocBytes(d)
		}
		if len(kept) > 0 {
			keptBatches = append(keptBatches, kept)
		}
	}
	dst := filepath.Join(dir, "dst.arrow")
	info, removed, stats, err := filterDocShard(src, dst, func(id string) bool { return ids[id] })
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if removed != wantRemoved || info.Rows != wantRows || info.DataBytes != wantData {
		t.Fatalf("%s: removed %d rows %d data %d, want %d %d %d", what, removed, info.Rows, info.DataBytes, wantRemoved, wantRows, wantData)
	}
	if removed == 0 || wantRows == 0 {
		if _, err := os.Stat(dst); err == nil {
			t.Fatalf("%s: wrote a file", what)
		}
		return stats
	}
	fresh := filepath.Join(dir, "fresh.arrow")
	writeDocFile(t, fresh, dropped, keptBatches, CreateIPCFile)
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: filtered shard (%d bytes) differs from a fresh write of the kept rows (%d bytes); stats %+v", what, len(got), len(want), stats)
	}
	sum, n, err := FileSHA256(dst)
	if err != nil || sum != info.SHA256 || n != info.Bytes {
		t.Fatalf("%s: info %+v, file %s %d %v", what, info, sum, n, err)
	}
	// And every reader agrees with the documents.
	r, err := OpenDocShard(dst)
	if err != nil {
		t.Fatal(err)
	}
	var all []*Document
	for _, b := range keptBatches {
		all = append(all, b...)
	}
	checkDocs(t, what, drain(t, r), all, dropped)
	r.Close()
	return stats
}

// TestFilterDocShardEqualsFreshWrite: filtering a framed shard gives the
// bytes of a fresh write of the kept rows, copying the untouched frames:
// scattered removals, a removed document that cut a frame (its frame
// merges with the next), whole frames, whole batches, the first and last
// rows, nothing and everything.
func TestFilterDocShardEqualsFreshWrite(t *testing.T) {
	// 1 MiB of real text in a thoroughness run (SMELT_THOROUGH=1; testutil
	// imports this package), 256 KiB otherwise.
	limit := 256 << 10
	if os.Getenv("SMELT_THOROUGH") != "" {
		limit = 1 << 20
	}
	for _, dropped := range []bool{false, true} {
		docs := testRealDocs(t, limit, dropped)
		if docs == nil {
			docs = edgeDocs(300, dropped)
		}
		docs = append(docs, edgeDocs(120, dropped)...)
		var batches [][]*Document
		for i, n := 0, 0; i < len(docs); n++ {
			size := []int{70, 1, 17, 130, 2}[n%5]
			batches = append(batches, docs[i:min(i+size, len(docs))])
			i += size
		}
		write := func(path string, info *ShardInfo) error {
			*info = writeDocFile(t, path, dropped, batches, CreateIPCFile)
			return nil
		}
		rng := rand.New(rand.NewPCG(7, uint64(len(docs))))
		pick := map[string]bool{}
		for _, d := range docs {
			if rng.IntN(100) == 0 {
				pick[d.ID] = true
			}
		}
		pick[docs[len(docs)/2].ID] = true
		var cutter string
		for _, d := range docs[10:] {
			if frameCut([]byte(d.ID)) && len(d.Text) > 0 {
				cutter = d.ID
				break
			}
		}
		cases := []struct {
			name   string
			remove func(*Document) bool
		}{
			{"none", func(*Document) bool { return false }},
			{"1% at random", func(d *Document) bool { return pick[d.ID] }},
			{"a document that cuts a frame", func(d *Document) bool { return d.ID == cutter }},
			{"every tenth", func(d *Document) bool { return strings.HasSuffix(d.ID, "0") }},
			{"first and last", func(d *Document) bool { return d == docs[0] || d == docs[len(docs)-1] }},
			{"a whole batch", func(d *Document) bool {
				for _, x := range batches[3] {
					if x == d {
						return true
					}
				}
				return false
			}},
			{"all but one", func(d *Document) bool { return d != docs[5] }},
			{"all", func(*Document) bool { return true }},
		}
		for _, c := range cases {
			what := fmt.Sprintf("dropped=%v %s", dropped, c.name)
			stats := filterCase(t, what, dropped, batches, c.remove, write)
			if c.name == "1% at random" || c.name == "a document that cuts a frame" {
				if stats.copied == 0 || stats.whole != 0 || stats.compressed >= stats.copied {
					t.Fatalf("%s: frames copied %d, compressed %d, batches decompressed whole %d", what, stats.copied, stats.compressed, stats.whole)
				}
			}
		}
	}
}

// TestFilterDocShardIncompressible: text that zstd does not shrink is
// stored as it is (prefix -1), by a fresh write and by the filter alike,
// also where the removed rows were what made the frames smaller.
func TestFilterDocShardIncompressible(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var docs []*Document
	for i := 0; i < 60; i++ {
		p := make([]byte, 50+rng.IntN(400))
		for j := range p {
			p[j] = byte(rng.IntN(256))
		}
		text := string(p)
		if i%20 == 0 {
			text = strings.Repeat("compressible ", 4000)
		}
		docs = append(docs, &Document{ID: fmt.Sprintf("r/%d", i), Text: text})
	}
	write := func(path string, info *ShardInfo) error {
		*info = writeDocFile(t, path, false, [][]*Document{docs}, CreateIPCFile)
		return nil
	}
	filterCase(t, "the compressible rows removed", false, [][]*Document{docs}, func(d *Document) bool { return strings.HasPrefix(d.Text, "compressible") }, write)
	filterCase(t, "one random row removed", false, [][]*Document{docs}, func(d *Document) bool { return d.ID == "r/7" }, write)
}

// TestFilterDocShardOneFrame: shards written before the text was framed
// (one zstd frame per buffer, by this writer or by Arrow Go's) still
// filter to the kept rows, written as a fresh write writes them now.
func TestFilterDocShardOneFrame(t *testing.T) {
	docs := edgeDocs(200, true)
	if real := testRealDocs(t, 200<<10, true); real != nil {
		docs = append(real, docs...)
	}
	batches := [][]*Document{docs[:100], docs[100:101], docs[101:]}
	for _, who := range []string{"hand, one frame", "Arrow Go"} {
		write := func(path string, info *ShardInfo) error {
			if who == "Arrow Go" {
				*info = writeDocFile(t, path, true, batches, createArrowGoIPCFile)
				return nil
			}
			frameText = false
			defer func() { frameText = true }()
			*info = writeDocFile(t, path, true, batches, CreateIPCFile)
			for b, n := range textFrameCounts(t, path) {
				if n > 1 {
					t.Fatalf("batch %d has %d frames with framing off", b, n)
				}
			}
			return nil
		}
		stats := filterCase(t, who, true, batches, func(d *Document) bool { return len(d.ID)%7 == 0 || strings.HasSuffix(d.ID, "3") }, write)
		if stats.whole == 0 {
			t.Fatalf("%s: no batch decompressed whole (%+v)", who, stats)
		}
	}
}

// TestFilterDocShardNulls: columns with nulls (which smelt's writers never
// make, but a shard from another tool may hold), a null id and null text
// among them, filter to the bytes of a fresh write of the kept rows.
func TestFilterDocShardNulls(t *testing.T) {
	sc := DocSchema(true)
	bld := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer bld.Release()
	const n = 300
	for i := 0; i < n; i++ {
		for k, f := range bld.Fields() {
			switch fb := f.(type) {
			case *array.StringBuilder:
				switch {
				case sc.Field(k).Name == ColID && i%50 == 49:
					fb.AppendNull()
				case sc.Field(k).Name == ColID:
					fb.Append(fmt.Sprintf("n/%d", i))
				case (i+k)%3 == 0:
					fb.AppendNull()
				default:
					fb.Append(strings.Repeat(fmt.Sprintf("v%d-%d-ü ", i, k), 1+i%40))
				}
			case *array.Float64Builder:
				if (i+k)%4 == 0 {
					fb.AppendNull()
				} else {
					fb.Append(float64(i) / 3)
				}
			}
		}
	}
	rec := bld.NewRecord()
	defer rec.Release()
	batches := [][2]int64{{0, 150}, {150, 151}, {151, n}}
	remove := func(i int) bool { return (i%7 == 0 || i == 150) && i%50 != 49 }
	dir := t.TempDir()
	src, fresh, dst := filepath.Join(dir, "src.arrow"), filepath.Join(dir, "fresh.arrow"), filepath.Join(dir, "dst.arrow")
	ids := map[string]bool{}
	for _, path := range []string{src, fresh} {
		f, err := CreateIPCFile(path, sc)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range batches {
			var parts []arrow.Record
			if path == src {
				parts = append(parts, rec.NewSlice(b[0], b[1]))
			} else {
				for i := b[0]; i < b[1]; i++ {
					if remove(int(i)) {
						ids[rec.Column(0).(*array.String).Value(int(i))] = true
					} else {
						parts = append(parts, rec.NewSlice(i, i+1))
					}
				}
			}
			if len(parts) == 0 {
				continue
			}
			cols := make([]arrow.Array, rec.NumCols())
			var rows int64
			for _, p := range parts {
				rows += p.NumRows()
			}
			for c := range cols {
				var arrs []arrow.Array
				for _, p := range parts {
					arrs = append(arrs, p.Column(c))
				}
				if cols[c], err = array.Concatenate(arrs, memory.DefaultAllocator); err != nil {
					t.Fatal(err)
				}
			}
			out := array.NewRecord(sc, cols, rows)
			if err := f.Write(out); err != nil {
				t.Fatal(err)
			}
			out.Release()
			for c := range cols {
				cols[c].Release()
			}
			for _, p := range parts {
				p.Release()
			}
		}
		if _, err := f.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if ids[""] {
		t.Fatal("test removes the null ids")
	}
	_, removed, stats, err := filterDocShard(src, dst, func(id string) bool { return ids[id] })
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dst)
	want, _ := os.ReadFile(fresh)
	if removed != int64(len(ids)) || !bytes.Equal(got, want) {
		t.Fatalf("removed %d of %d; filtered %d bytes, fresh write %d, equal %v (%+v)", removed, len(ids), len(got), len(want), bytes.Equal(got, want), stats)
	}
	if stats.copied == 0 {
		t.Fatalf("no frame copied: %+v", stats)
	}
}

// TestFilterDocShardCorrupt: a damaged shard (bytes changed anywhere, or
// cut short) gives an error or a file, never a panic or a hang; and the
// error names the file.
func TestFilterDocShardCorrupt(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.arrow")
	docs := edgeDocs(120, true)
	writeDocFile(t, src, true, [][]*Document{docs[:70], docs[70:]}, CreateIPCFile)
	good, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	rm := func(id string) bool { return strings.HasSuffix(id, "7") }
	rng := rand.New(rand.NewPCG(5, 6))
	bad := filepath.Join(dir, "bad.arrow")
	errs := 0
	for i := 0; i < 300; i++ {
		p := bytes.Clone(good)
		if i%10 == 9 {
			p = p[:rng.IntN(len(p))]
		} else {
			for k := 0; k < 1+rng.IntN(4); k++ {
				p[rng.IntN(len(p))] ^= byte(1 + rng.IntN(255))
			}
		}
		if err := os.WriteFile(bad, p, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := FilterDocShard(bad, filepath.Join(dir, "out.arrow"), ShardInfo{}, rm)
		if err != nil {
			errs++
			if !strings.Contains(err.Error(), bad) && !errors.Is(err, ErrFilterFallback) {
				t.Fatalf("error without the file's name: %v", err)
			}
		}
	}
	if errs == 0 {
		t.Fatal("no damaged file was refused")
	}
}

// TestFilterDocShardRefusesClaims: a shard whose text claims far more
// bytes than its manifest entry records (here 64 MiB of one repeated byte,
// a few KiB compressed, against the entry of a small shard) is refused
// with an error naming the file, before the claimed bytes are allocated.
func TestFilterDocShardRefusesClaims(t *testing.T) {
	dir := t.TempDir()
	small := writeDocFile(t, filepath.Join(dir, "small.arrow"), false, [][]*Document{edgeDocs(10, false)}, CreateIPCFile)
	src := filepath.Join(dir, "big.arrow")
	// c and a share a frame (the cap cuts after a), so removing c makes
	// the filter decompress that frame.
	big := []*Document{{ID: "c", Source: "web", Text: "z"}, {ID: "a", Source: "web", Text: strings.Repeat("x", 64<<20)}, {ID: "b", Source: "web", Text: "y"}}
	writeDocFile(t, src, false, [][]*Document{big}, CreateIPCFile)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err := FilterDocShard(src, filepath.Join(dir, "out.arrow"), small, func(id string) bool { return id == "c" })
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), src) || !strings.Contains(err.Error(), "claims") {
		t.Fatalf("a shard larger than its manifest says filtered with %v", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Fatalf("refusing it allocated %d MB", got>>20)
	}
}

// TestOpenDocShardLengths: the lengths-only reader gives every field the
// full reader gives, and text of the same length, all zero bytes, without
// decompressing the text (a text buffer that is not zstd still reads);
// on a layout the fast reader does not handle it reads the text.
func TestOpenDocShardLengths(t *testing.T) {
	dir := t.TempDir()
	for _, dropped := range []bool{false, true} {
		for _, c := range docCases(t, dropped) {
			path := filepath.Join(dir, fmt.Sprintf("%s-%v.arrow", c.name, dropped))
			info := writeDocFile(t, path, dropped, c.batches, CreateIPCFile)
			full, err := OpenDocShardInfo(path, info, true)
			if err != nil {
				t.Fatal(err)
			}
			want := drain(t, full)
			full.Close()
			r, err := OpenDocShardLengths(path, info, true)
			if err != nil {
				t.Fatal(err)
			}
			if _, fast := r.(*fastDocShard); !fast && info.Rows > 0 {
				t.Fatalf("%s: not read by the fast reader", c.name)
			}
			got := drain(t, r)
			r.Close()
			if len(got) != len(want) {
				t.Fatalf("%s: %d documents, want %d", c.name, len(got), len(want))
			}
			for i := range want {
				g, w := *got[i], *want[i]
				if len(g.Text) != len(w.Text) || strings.Trim(g.Text, "\x00") != "" {
					t.Fatalf("%s row %d: text of %d bytes (%q...), want %d zero bytes", c.name, i, len(g.Text), g.Text[:min(8, len(g.Text))], len(w.Text))
				}
				if DocBytes(&g) != DocBytes(&w) {
					t.Fatalf("%s row %d: %d bytes, want %d", c.name, i, DocBytes(&g), DocBytes(&w))
				}
				g.Text, w.Text = "", ""
				if !reflect.DeepEqual(g, w) {
					t.Fatalf("%s row %d:\n got %+v\nwant %+v", c.name, i, g, w)
				}
			}
		}
	}
	// A text frame damaged past its header: the full reader fails, the
	// lengths-only reader, which does not decompress it, still reads the
	// other columns (the sha256 check is the caller's, as with verify).
	// Text of random numbers compresses to most of the file.
	rng := rand.New(rand.NewPCG(5, 6))
	var docs []*Document
	for i := 0; i < 50; i++ {
		var b strings.Builder
		for b.Len() < 2000 {
			fmt.Fprintf(&b, "%d ", rng.IntN(100000))
		}
		docs = append(docs, &Document{ID: fmt.Sprintf("d/%d", i), URL: fmt.Sprintf("https://example.com/%d", i), Text: b.String()})
	}
	path := filepath.Join(dir, "damaged.arrow")
	info := writeDocFile(t, path, false, [][]*Document{docs}, CreateIPCFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The text buffer is most of the file: flip bytes in its middle.
	for i := len(data)/2 - 8; i < len(data)/2+8; i++ {
		data[i] ^= 0xff
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := OpenDocShardLengths(path, info, false)
	if err != nil {
		t.Fatal(err)
	}
	got := drain(t, r)
	r.Close()
	if len(got) != len(docs) || got[49].ID != "d/49" || len(got[49].Text) != len(docs[49].Text) {
		t.Fatalf("lengths-only read of a shard with damaged text: %d documents", len(got))
	}
	if full, err := OpenDocShardInfo(path, info, false); err == nil {
		for {
			if _, err = full.Next(); err != nil {
				break
			}
		}
		if errors.Is(err, io.EOF) {
			t.Fatal("the full reader read the damaged text without an error: the damage missed the text")
		}
	}
}
