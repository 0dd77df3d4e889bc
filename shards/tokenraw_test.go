package shards

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestRawTokenReader writes token shards (narrow and wide ids, several
// record batches, empty ids and sources, empty rows) uncompressed and zstd
// and reads them with ReadTokenShard: uncompressed ones through the raw
// reader (tokenraw.go), zstd ones through Arrow Go, both giving back what
// was written, and the raw reader giving what Arrow Go's gives. Then it
// damages an uncompressed shard's record batches at random places and
// reads it without a checksum: the raw reader never crashes, and wherever
// it takes the damaged file, Arrow Go reads the same rows from it.
func TestRawTokenReader(t *testing.T) {
	for _, vocab := range []int{1000, 1<<16 + 1} {
		for _, comp := range []string{TokenCompressionNone, TokenCompressionZstd} {
			t.Run(fmt.Sprint(vocab, comp), func(t *testing.T) {
				dir := t.TempDir()
				tok := TokenizerInfo{Name: "t", VocabSize: vocab, EOT: uint32(vocab - 1)}
				w, err := NewTokenWriter(dir, TokenWriterOptions{Tokenizer: tok, BatchBytes: 2 << 10, TargetBytes: 16 << 10, Compression: comp})
				if err != nil {
					t.Fatal(err)
				}
				type row struct {
					id, src string
					toks    []uint32
				}
				var rows []row
				r := newSplitMix(3, 1, uint64(vocab))
				for i := 0; i < 200; i++ {
					x := row{id: fmt.Sprint("d", i), src: []string{"web", "", "books"}[i%3]}
					if i%40 == 3 {
						x.id = ""
					}
					for j := 0; j < i%29; j++ {
						x.toks = append(x.toks, uint32(r.bounded(uint64(vocab))))
					}
					rows = append(rows, x)
					if err := w.Write(x.id, x.src, x.toks); err != nil {
						t.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				k := 0
				for _, sh := range w.Shards() {
					path := filepath.Join(dir, sh.Name)
					ts, err := ReadTokenShard(path, &sh, vocab)
					if err != nil {
						t.Fatal(err)
					}
					for i := 0; i < ts.Rows(); i++ {
						want := rows[k]
						k++
						got := ts.AppendTokens(nil, i, 0, ts.Len(i))
						if ts.ID(i) != want.id || ts.Source(i) != want.src || len(got) != len(want.toks) || len(got) > 0 && !reflect.DeepEqual(got, want.toks) {
							t.Fatalf("%s row %d: %q %q %v, want %+v", sh.Name, i, ts.ID(i), ts.Source(i), got, want)
						}
					}
					data, err := os.ReadFile(path)
					if err != nil {
						t.Fatal(err)
					}
					var wide bool
					took := decodeRawTokenShard(data, &TokenShard{offs: []int64{0}}, &wide)
					if took != (comp == TokenCompressionNone) || took && wide != (vocab > 1<<16) {
						t.Fatalf("%s: raw reader took it: %v (wide %v)", sh.Name, took, wide)
					}
				}
				if k != len(rows) {
					t.Fatalf("read %d rows of %d", k, len(rows))
				}
				if comp != TokenCompressionNone {
					return
				}
				sh := w.Shards()[0]
				orig, err := os.ReadFile(filepath.Join(dir, sh.Name))
				if err != nil {
					t.Fatal(err)
				}
				// The record batches: from the first batch to the footer.
				// (Arrow Go itself allocates whatever a damaged schema
				// claims, see TestTokenShardCorruption, so the schema and
				// footer are left alone.)
				n := len(orig)
				flen := int(binary.LittleEndian.Uint32(orig[n-10:]))
				footer := fbRoot(orig[n-10-flen : n-10])
				bstart, _ := footer.vec(3, 24)
				lo, hi := uint64(footer.i64(bstart)), uint64(n-10-flen)
				taken := 0
				for c := 0; c < 400; c++ {
					data := append([]byte(nil), orig...)
					for n := 0; n < 1+c%3; n++ {
						data[lo+r.bounded(hi-lo)] ^= byte(1 + r.bounded(255))
					}
					raw := &TokenShard{offs: []int64{0}}
					var wide bool
					if !decodeRawTokenShard(data, raw, &wide) {
						continue
					}
					taken++
					ref, err := decodeTokenShardArrow("x", data, 0, 256*int64(len(data)), 0, 0)
					if err != nil {
						continue // Arrow Go checks more (e.g. n_tokens); the raw reader need not
					}
					if !reflect.DeepEqual(raw.offs, ref.offs) || !reflect.DeepEqual(raw.ids, ref.ids) || !reflect.DeepEqual(raw.src, ref.src) ||
						fmt.Sprint(raw.u16, raw.u32) != fmt.Sprint(ref.u16, ref.u32) {
						t.Fatalf("damage %d: the raw reader and Arrow Go read different rows", c)
					}
				}
				if taken == 0 {
					t.Fatal("the raw reader took no damaged file: the comparison never ran")
				}
			})
		}
	}
}
