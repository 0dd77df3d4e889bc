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
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	flatbuffers "github.com/google/flatbuffers/go"
)

// TestTokenWriterReadByArrowGo writes token shards with the hand-written
// IPC writer (narrow and wide ids, several record batches, empty ids and
// sources, a one-token row; buffers uncompressed and zstd) and reads them
// back with Arrow Go's own IPC reader, checking the schema, its metadata
// and every value. Uncompressed, every row's ids must lie in the file as
// they are, little-endian (what a memory-mapping reader relies on).
func TestTokenWriterReadByArrowGo(t *testing.T) {
	for _, c := range []struct {
		vocab int
		comp  string
	}{{1000, ""}, {1 << 16, "none"}, {1<<16 + 1, "none"}, {200000, "none"}, {1000, "zstd"}, {1<<16 + 1, "zstd"}} {
		vocab := c.vocab
		t.Run(fmt.Sprint(vocab, c.comp), func(t *testing.T) {
			dir := t.TempDir()
			tok := TokenizerInfo{Name: "t", VocabSize: vocab, EOT: uint32(vocab - 1)}
			w, err := NewTokenWriter(dir, TokenWriterOptions{Tokenizer: tok, BatchBytes: 4 << 10, TargetBytes: 64 << 10, Compression: c.comp})
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, uint64(vocab)))
			type row struct {
				id, src string
				toks    []uint32
			}
			var rows []row
			for i := 0; i < 300; i++ {
				r := row{id: fmt.Sprintf("doc-%d", i), src: []string{"web", "", "books/ü"}[i%3]}
				if i%50 == 7 {
					r.id = ""
				}
				n := 1 + rng.IntN(400)
				for j := 0; j < n; j++ {
					r.toks = append(r.toks, uint32(rng.IntN(vocab)))
				}
				rows = append(rows, r)
				if err := w.Write(r.id, r.src, r.toks); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if len(w.Shards()) < 2 {
				t.Fatalf("%d shards, want several", len(w.Shards()))
			}
			want := TokenSchema(tok)
			next := 0
			for _, sh := range w.Shards() {
				data, err := os.ReadFile(filepath.Join(dir, sh.Name))
				if err != nil {
					t.Fatal(err)
				}
				if int64(len(data)) != sh.Bytes || sha256Hex(data) != sh.SHA256 {
					t.Fatalf("%s: size or sha256 differ from the writer's record", sh.Name)
				}
				r, err := ipc.NewFileReader(bytes.NewReader(data), ipc.WithAllocator(memory.DefaultAllocator))
				if err != nil {
					t.Fatalf("%s: Arrow Go cannot open it: %v", sh.Name, err)
				}
				if !r.Schema().Equal(want) || !r.Schema().Metadata().Equal(want.Metadata()) {
					t.Fatalf("%s: schema\n%v\nwant\n%v", sh.Name, r.Schema(), want)
				}
				if r.NumRecords() < 2 {
					t.Fatalf("%s: %d record batches, want several", sh.Name, r.NumRecords())
				}
				var got int64
				for b := 0; b < r.NumRecords(); b++ {
					rec, err := r.RecordAt(b)
					if err != nil {
						t.Fatal(err)
					}
					ids := rec.Column(0).(*array.String)
					srcs := rec.Column(1).(*array.String)
					lists := rec.Column(2).(*array.List)
					ns := rec.Column(3).(*array.Int64)
					for i := 0; i < int(rec.NumRows()); i++ {
						wr := rows[next]
						next++
						lo, hi := lists.ValueOffsets(i)
						var toks []uint32
						for k := lo; k < hi; k++ {
							switch v := lists.ListValues().(type) {
							case *array.Uint16:
								toks = append(toks, uint32(v.Value(int(k))))
							case *array.Uint32:
								toks = append(toks, v.Value(int(k)))
							}
						}
						if ids.Value(i) != wr.id || srcs.Value(i) != wr.src || ns.Value(i) != int64(len(wr.toks)) || fmt.Sprint(toks) != fmt.Sprint(wr.toks) || ids.IsNull(i) || lists.IsNull(i) {
							t.Fatalf("%s batch %d row %d: got %q %q %d %v, want %+v", sh.Name, b, i, ids.Value(i), srcs.Value(i), ns.Value(i), toks, wr)
						}
						var raw []byte
						for _, x := range wr.toks {
							if vocab > 1<<16 {
								raw = binary.LittleEndian.AppendUint32(raw, x)
							} else {
								raw = binary.LittleEndian.AppendUint16(raw, uint16(x))
							}
						}
						if c.comp != "zstd" && !bytes.Contains(data, raw) {
							t.Fatalf("%s batch %d row %d: the ids are not in the uncompressed file as they are", sh.Name, b, i)
						}
						got++
					}
					rec.Release()
				}
				r.Close()
				if got != sh.Rows {
					t.Fatalf("%s: %d rows, manifest entry %d", sh.Name, got, sh.Rows)
				}
				// smelt's own reader too.
				if _, err := ReadTokenShard(filepath.Join(dir, sh.Name), &sh, vocab); err != nil {
					t.Fatal(err)
				}
			}
			if next != len(rows) {
				t.Fatalf("read %d rows of %d", next, len(rows))
			}
		})
	}
}

// readDocsVia reads every document of dirs with the Arrow-based reader or the
// fast one.
func readDocsVia(t *testing.T, fast bool, dirs ...string) []*Document {
	t.Helper()
	r, err := OpenDocDirs(dirs...)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.fast = fast
	var out []*Document
	for {
		d, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
}

// TestFastDocReaderMatchesArrow reads document shards, with every column
// set, missing (null quality) or empty, with and without the dropped
// columns, through the tokenize stage's reader and through Arrow Go's,
// and checks they give the same documents.
func TestFastDocReaderMatchesArrow(t *testing.T) {
	for _, dropped := range []bool{false, true} {
		dir := t.TempDir()
		w := NewDocWriter(dir, DocWriterOptions{TargetBytes: 32 << 10, BatchRows: 7, Dropped: dropped})
		for i := 0; i < 200; i++ {
			d := &Document{ID: fmt.Sprint("d", i), Source: []string{"web", "books"}[i%2], URL: fmt.Sprintf("https://example.org/%d", i),
				Date: "2024-01-02", Lang: []string{"en", "fr", ""}[i%3], LangScore: float64(i) / 7,
				Text: strings.Repeat(fmt.Sprintf("text %d é ", i), i%40), Meta: fmt.Sprintf(`{"n":%d}`, i)}
			if i%4 != 0 {
				d.Quality, d.HasQuality = float64(i)/3, true
			}
			if dropped && i%3 != 0 {
				d.Drop = &Drop{Reason: "r/" + fmt.Sprint(i%5), Value: fmt.Sprint(i), DupOf: fmt.Sprint("d", i/2)}
			}
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
		slow, fast := readDocsVia(t, false, dir, dir), readDocsVia(t, true, dir, dir)
		if len(slow) != 400 || len(fast) != len(slow) {
			t.Fatalf("%d and %d documents, want 400", len(slow), len(fast))
		}
		for i := range slow {
			a, b := *slow[i], *fast[i]
			if (a.Drop == nil) != (b.Drop == nil) || (a.Drop != nil && *a.Drop != *b.Drop) {
				t.Fatalf("doc %d: drop %+v vs %+v", i, a.Drop, b.Drop)
			}
			a.Drop, b.Drop = nil, nil
			if a != b {
				t.Fatalf("doc %d:\n%+v\n%+v", i, a, b)
			}
		}
	}
}

// TestFastDocReaderCorruption flips bytes all over a document shard and
// reads it with the checksum check off: every read must end in documents
// or an error naming the file, never a panic or a huge allocation.
func TestFastDocReaderCorruption(t *testing.T) {
	dir := t.TempDir()
	var docs []*Document
	for i := 0; i < 40; i++ {
		docs = append(docs, &Document{ID: fmt.Sprint("d", i), Source: "web", Lang: "en", Text: strings.Repeat("corrupt me ", 20+i)})
	}
	writeDocDir(t, dir, docs, 1<<20)
	m, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, m.Shards[0].Name)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	errs := 0
	for trial := 0; trial < 300; trial++ {
		data := bytes.Clone(orig)
		for k := 0; k < 1+trial%4; k++ {
			data[rng.IntN(len(data))] ^= byte(1 + rng.IntN(255))
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		// The fast reader alone: a layout it leaves to Arrow Go
		// (errNotFast) counts as refused.
		s, err := openFastDocShard(path, m.Shards[0], false, nil)
		for err == nil {
			_, err = s.Next()
		}
		if errors.Is(err, io.EOF) || errors.Is(err, errNotFast) {
			continue
		}
		if !strings.Contains(err.Error(), path) {
			t.Fatalf("error does not name the file: %v", err)
		}
		errs++
	}
	if errs == 0 {
		t.Fatal("no corruption was detected")
	}
	// With the check on, a changed file is refused before it is parsed.
	data := bytes.Clone(orig)
	data[len(data)/2] ^= 1
	os.WriteFile(path, data, 0o644)
	r, _ := OpenDocDirs(dir)
	r.fast = true
	if _, err := r.Next(); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("corrupt shard read with the checksum on: %v", err)
	}
	r.Close()
}

// TestFastVecLengthBounded: a flatbuffer vector whose length field was
// crafted to 2^31-1 is reported as corrupt (-1) by vec, so the reader
// refuses it before allocating for it.
func TestFastVecLengthBounded(t *testing.T) {
	b := flatbuffers.NewBuilder(64)
	b.StartVector(16, 3, 8)
	for i := 0; i < 6; i++ {
		b.PrependInt64(int64(i))
	}
	v := b.EndVector(3)
	b.StartObject(1)
	b.PrependUOffsetTSlot(0, v, 0)
	b.Finish(b.EndObject())
	buf := b.FinishedBytes()
	root := fbRoot(buf)
	start, n := root.vec(0, 16)
	if n != 3 {
		t.Fatalf("vector of 3 read as %d", n)
	}
	binary.LittleEndian.PutUint32(buf[start-4:], 1<<31-1)
	if _, n := root.vec(0, 16); n != -1 {
		t.Fatalf("a vector claiming 2^31-1 elements of 16 bytes in a %d-byte buffer read as length %d", len(buf), n)
	}
}
