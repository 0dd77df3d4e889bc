package export

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
)

// removalCase is a set of documents a takedown removes.
type removalCase struct {
	name    string
	removed map[string]bool
}

// removalCases are the removal patterns of the derive tests, for blocks
// cut after the documents where cut holds: nothing, the first and the
// last document, a cut document inside a shard (its block merges with
// the next), a whole block, a whole shard (the takedown drops the
// emptied shard from its manifest), 1 % and 10 % at random.
func removalCases(t *testing.T, parts [][]*shards.Document, cut func(string) bool) []removalCase {
	t.Helper()
	ids := func(ds ...*shards.Document) map[string]bool {
		m := map[string]bool{}
		for _, d := range ds {
			m[d.ID] = true
		}
		return m
	}
	var all []*shards.Document
	for _, p := range parts {
		all = append(all, p...)
	}
	// In the second shard: a cut document that is not the first, and
	// the whole block after it.
	p := parts[1]
	var cutDoc *shards.Document
	var block []*shards.Document
	for i, d := range p[:len(p)-1] {
		if i == 0 || !cut(d.ID) {
			continue
		}
		if cutDoc == nil {
			cutDoc = d
			block = nil
			continue
		}
		block = p[docIndex(p, cutDoc)+1 : i+1]
		break
	}
	if cutDoc == nil || len(block) == 0 {
		t.Fatal("no cut document and block in the second shard: the test wants them")
	}
	random := func(frac float64, seed uint64) map[string]bool {
		rng := rand.New(rand.NewPCG(seed, 28))
		m := map[string]bool{}
		for _, d := range all {
			if rng.Float64() < frac {
				m[d.ID] = true
			}
		}
		return m
	}
	last := parts[len(parts)-1]
	return []removalCase{
		{"nothing", map[string]bool{}},
		{"first document", ids(all[0])},
		{"last document", ids(last[len(last)-1])},
		{"a shard's last document", ids(parts[0][len(parts[0])-1])},
		{"a cut document", ids(cutDoc)},
		{"a whole block", ids(block...)},
		{"a whole shard", ids(parts[2]...)},
		{"random 1%", random(0.01, 1)},
		{"random 10%", random(0.10, 2)},
	}
}

func docIndex(docs []*shards.Document, d *shards.Document) int {
	for i := range docs {
		if docs[i] == d {
			return i
		}
	}
	return -1
}

// writeReducedDir writes parts less the removed documents into dir as a
// takedown leaves them: an emptied shard is left out of the manifest, and
// every other shard keeps its name in orig (a document directory written
// from parts).
func writeReducedDir(t *testing.T, dir, orig string, parts [][]*shards.Document, removed map[string]bool) {
	t.Helper()
	writeCutDocDir(t, dir, reducedParts(parts, removed))
	om, err := shards.ReadManifest(orig)
	if err != nil {
		t.Fatal(err)
	}
	m, err := shards.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i, p := range without(parts, removed) {
		if len(p) > 0 {
			names = append(names, om.Shards[i].Name)
		}
	}
	for j := len(m.Shards) - 1; j >= 0; j-- {
		if err := os.Rename(filepath.Join(dir, m.Shards[j].Name), filepath.Join(dir, names[j])); err != nil {
			t.Fatal(err)
		}
		m.Shards[j].Name = names[j]
	}
	if err := shards.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
}

// splitUnchanged separates the shards a removal leaves whole (their
// files are linked from the earlier export, not derived) from the others.
func splitUnchanged(parts [][]*shards.Document, removed map[string]bool) (unchanged, changed [][]*shards.Document) {
	for _, p := range parts {
		hit := false
		for _, d := range p {
			hit = hit || removed[d.ID]
		}
		if hit {
			changed = append(changed, p)
		} else {
			unchanged = append(unchanged, p)
		}
	}
	return unchanged, changed
}

// reducedParts is parts less the removed documents, with emptied shards
// left out (as a takedown leaves them out of the manifest).
func reducedParts(parts [][]*shards.Document, removed map[string]bool) [][]*shards.Document {
	var out [][]*shards.Document
	for _, p := range without(parts, removed) {
		if len(p) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// TestJSONLDeriveMatchesFreshExport removes documents the way a takedown
// does and checks that an export told which (Reuse.Removed) writes the
// bytes of a fresh export of the reduced shards (every file and
// export.json), reading no document from the shards, copying the blocks
// that kept all their documents and compressing only the others.
func TestJSONLDeriveMatchesFreshExport(t *testing.T) {
	docs := webDocs(t, 700, 300, 1)
	parts := partition(docs, 90<<10)
	if len(parts) < 4 {
		t.Fatalf("%d shards; the test wants several", len(parts))
	}
	root := t.TempDir()
	orig := filepath.Join(root, "orig")
	writeCutDocDir(t, orig, parts)
	comps := []string{"zstd", "gzip"}
	for _, comp := range comps {
		export(t, openDocInput(t, orig), filepath.Join(root, comp), Options{Format: FormatJSONL, Compression: comp})
	}
	for i, c := range removalCases(t, parts, func(id string) bool { return jsonlCutAfter(id, jsonlBlockDocs) }) {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(root, fmt.Sprint(i))
			in := filepath.Join(dir, "in")
			writeReducedDir(t, in, orig, parts, c.removed)
			want, total := expectEncoded(parts, c.removed)
			for _, comp := range comps {
				if comp == "gzip" && !testutil.IsThorough() && c.name != "a cut document" && c.name != "random 10%" {
					continue // gzip's whole matrix under SMELT_THOROUGH
				}
				opt := Options{Format: FormatJSONL, Compression: comp}
				fresh, derived := filepath.Join(dir, comp+"-fresh"), filepath.Join(dir, comp+"-derived")
				export(t, openDocInput(t, in), fresh, opt)
				opt.Reuse = &Reuse{Dir: filepath.Join(root, comp), Removed: c.removed}
				before, linkedBefore := DocsReadFromShards(), filesLinked.Load()
				export(t, openDocInput(t, in), derived, opt)
				if n := DocsReadFromShards() - before; n != 0 {
					t.Fatalf("%s: the derived export read %d documents from the shards", comp, n)
				}
				sameExportDirs(t, fresh, derived, comp)
				// The shards the removal left whole have their files linked
				// from the earlier export, the same inodes; the others are
				// derived block by block.
				unchanged, _ := splitUnchanged(parts, c.removed)
				if n := filesLinked.Load() - linkedBefore; n != int64(len(unchanged)) {
					t.Fatalf("%s: %d files linked, want the %d of the unchanged shards", comp, n, len(unchanged))
				}
				checkLinked(t, filepath.Join(root, comp), derived, len(unchanged))
				linkedBlocks := len(blockIDs(unchanged, nil))
				copied, encoded := countsOf(t, derived)
				if encoded != int64(want) || copied+encoded+int64(linkedBlocks) != int64(total) {
					t.Fatalf("%s: copied %d and compressed %d blocks, %d in linked files; want %d compressed of %d", comp, copied, encoded, linkedBlocks, want, total)
				}
				t.Logf("%s: %d of %d blocks copied, %d in linked files", comp, copied, total, linkedBlocks)
			}
		})
	}
}

// TestJSONLDeriveEmptiedFile derives a shard's file with every document
// removed: the one empty block a fresh export writes for an empty shard.
func TestJSONLDeriveEmptiedFile(t *testing.T) {
	docs := webDocs(t, 60, 300, 3)
	for _, comp := range []string{"zstd", "gzip"} {
		root := t.TempDir()
		writeCutDocDir(t, filepath.Join(root, "in"), [][]*shards.Document{docs})
		p := export(t, openDocInput(t, filepath.Join(root, "in")), filepath.Join(root, "out"), Options{Format: FormatJSONL, Compression: comp})
		data, err := os.ReadFile(filepath.Join(root, "out", p.Files[0].Name))
		if err != nil {
			t.Fatal(err)
		}
		enc, err := newBlockEncoder(comp)
		if err != nil {
			t.Fatal(err)
		}
		removed := map[string]bool{}
		for _, d := range docs {
			removed[d.ID] = true
		}
		e := &jsonlExporter{perShard: perShard{reuse: &reuseSet{removed: removed}}, enc: enc}
		var got bytes.Buffer
		var fi FileInfo
		if err := e.derive(context.Background(), &got, data, int64(len(docs)), shards.ShardInfo{Rows: 0}, &fi); err != nil {
			t.Fatal(err)
		}
		want, err := enc.encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) || fi.Docs != 0 {
			t.Fatalf("%s: derived %d bytes (%d docs), want the empty block's %d", comp, got.Len(), fi.Docs, len(want))
		}
		// Told it keeps a document, it refuses.
		if err := e.derive(context.Background(), io.Discard, data, int64(len(docs)), shards.ShardInfo{Rows: 1}, &fi); err == nil {
			t.Fatalf("%s: a wrong kept count was not refused", comp)
		}
		enc.close()
	}
}

// TestJSONLDeriveFallsBack damages the earlier export's files in ways the
// sha256 record does and does not catch (records fixed to match the
// damage): the derived export must still write the fresh export's bytes,
// exporting the damaged files from their shards.
func TestJSONLDeriveFallsBack(t *testing.T) {
	docs := webDocs(t, 500, 300, 4)
	parts := partition(docs, 40<<10)
	if len(parts) < 5 {
		t.Fatalf("%d shards; the test wants 5", len(parts))
	}
	root := t.TempDir()
	orig, in := filepath.Join(root, "orig"), filepath.Join(root, "in")
	writeCutDocDir(t, orig, parts)
	removed := map[string]bool{}
	for i, d := range docs {
		if i%37 == 3 {
			removed[d.ID] = true
		}
	}
	writeCutDocDir(t, in, reducedParts(parts, removed))
	for _, comp := range []string{"zstd", "gzip"} {
		t.Run(comp, func(t *testing.T) {
			opt := Options{Format: FormatJSONL, Compression: comp}
			base, fresh, derived := filepath.Join(root, comp, "base"), filepath.Join(root, comp, "fresh"), filepath.Join(root, comp, "derived")
			p := export(t, openDocInput(t, orig), base, opt)
			export(t, openDocInput(t, in), fresh, opt)
			edit := func(i int, fix bool, fn func([]byte) []byte) {
				name := p.Files[i].Name
				b, err := os.ReadFile(filepath.Join(base, name))
				if err != nil {
					t.Fatal(err)
				}
				b = fn(b)
				if err := os.WriteFile(filepath.Join(base, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
				if fix {
					fixRecord(t, base, name, b)
				}
			}
			// 0: a flipped byte the record catches.
			edit(0, false, func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b })
			// 1: cut short, record fixed (the last block does not decode).
			edit(1, true, func(b []byte) []byte { return b[:len(b)-len(b)/3] })
			// 2: another shard's file, record fixed (the kept count
			// differs from the shard's).
			edit(2, true, func([]byte) []byte {
				b, err := os.ReadFile(filepath.Join(base, p.Files[4].Name))
				if err != nil {
					t.Fatal(err)
				}
				return b
			})
			// 3: one block holding the whole file, record fixed (not cut
			// as this exporter cuts: decoded and cut again, never copied).
			edit(3, true, func(b []byte) []byte {
				if comp != "zstd" {
					return b
				}
				dec, err := zstd.NewReader(bytes.NewReader(b))
				if err != nil {
					t.Fatal(err)
				}
				defer dec.Close()
				all, err := io.ReadAll(dec)
				if err != nil {
					t.Fatal(err)
				}
				enc, err := newBlockEncoder("zstd")
				if err != nil {
					t.Fatal(err)
				}
				defer enc.close()
				one, err := enc.encode(all)
				if err != nil {
					t.Fatal(err)
				}
				return bytes.Clone(one)
			})
			opt.Reuse = &Reuse{Dir: base, Removed: removed}
			before := DocsReadFromShards()
			export(t, openDocInput(t, in), derived, opt)
			sameExportDirs(t, fresh, derived, comp)
			read := DocsReadFromShards() - before
			want := int64(len(reducedParts(parts, removed)[0]) + len(reducedParts(parts, removed)[1]) + len(reducedParts(parts, removed)[2]))
			if read != want {
				t.Fatalf("%d documents read from the shards, want %d (the three damaged files')", read, want)
			}
		})
	}
}

// TestParquetDocsDeriveMatchesFreshExport is the Parquet documents
// counterpart of TestJSONLDeriveMatchesFreshExport: same bytes as a fresh
// export of the reduced shards, no document read from the shards, and
// exactly the untouched page groups copied. Row groups are small, so that
// the row-group cuts (which depend on every document's size) move.
func TestParquetDocsDeriveMatchesFreshExport(t *testing.T) {
	docs := wikiDocs(t)[:1500]
	parts := split(docs, 500)
	root := t.TempDir()
	orig := filepath.Join(root, "orig")
	writeCutDocDir(t, orig, parts)
	in := func(dir string) []*Input {
		i, err := OpenInput("wiki", dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		return []*Input{i}
	}
	for _, comp := range []string{"zstd", "snappy"} {
		opt := Options{Format: FormatParquet, Compression: comp, RowGroupBytes: 24 << 10}
		old := filepath.Join(root, "old-"+comp)
		export(t, in(orig), old, opt)
		for k, c := range removalCases(t, parts, docPageCut) {
			if comp == "snappy" && !testutil.IsThorough() && c.name != "a cut document" && c.name != "random 10%" {
				continue // snappy's whole matrix under SMELT_THOROUGH
			}
			reduced := filepath.Join(root, fmt.Sprintf("in-%s-%d", comp, k))
			kept := reducedParts(parts, c.removed)
			writeReducedDir(t, reduced, orig, parts, c.removed)
			fresh, derived := filepath.Join(root, fmt.Sprintf("fresh-%s-%d", comp, k)), filepath.Join(root, fmt.Sprintf("derived-%s-%d", comp, k))
			export(t, in(reduced), fresh, opt)
			o := opt
			o.Reuse = &Reuse{Dir: old, Removed: c.removed}
			copiedBefore, readBefore, linkedBefore := docGroupsCopied.Load(), DocsReadFromShards(), filesLinked.Load()
			export(t, in(reduced), derived, o)
			copied := docGroupsCopied.Load() - copiedBefore
			if n := DocsReadFromShards() - readBefore; n != 0 {
				t.Fatalf("%s %s: the derived export read %d documents from the shards", comp, c.name, n)
			}
			sameExportDirs(t, fresh, derived, comp+" "+c.name)
			unchanged, changed := splitUnchanged(parts, c.removed)
			if n := filesLinked.Load() - linkedBefore; n != int64(len(unchanged)) {
				t.Fatalf("%s %s: %d files linked, want the %d of the unchanged shards", comp, c.name, n, len(unchanged))
			}
			checkLinked(t, old, derived, len(unchanged))
			if want := expectedCopies(changed, c.removed); copied != int64(want) {
				t.Fatalf("%s %s: %d page groups copied, want %d", comp, c.name, copied, want)
			}
			if c.name == "random 1%" {
				for i, p := range kept {
					checkDocLayout(t, filepath.Join(derived, fmt.Sprintf("part-%05d.parquet", i)), p, opt.RowGroupBytes, parquetCodec(comp))
				}
			}
			t.Logf("%s %s: %d page groups copied", comp, c.name, copied)
		}
	}
}

// TestParquetDocsDeriveFallsBack: a damaged earlier Parquet file (caught
// by its record, or with the record fixed) or another shard's file is
// exported from its shard; the bytes are still a fresh export's.
func TestParquetDocsDeriveFallsBack(t *testing.T) {
	docs := wikiDocs(t)[:1700]
	parts := split(docs, 600) // 600, 600 and 500 documents
	root := t.TempDir()
	orig, reduced := filepath.Join(root, "orig"), filepath.Join(root, "reduced")
	writeCutDocDir(t, orig, parts)
	removed := map[string]bool{parts[0][10].ID: true, parts[1][100].ID: true, parts[2][5].ID: true}
	writeCutDocDir(t, reduced, reducedParts(parts, removed))
	in := func(dir string) []*Input {
		i, err := OpenInput("wiki", dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		return []*Input{i}
	}
	opt := Options{Format: FormatParquet}
	old, fresh, derived := filepath.Join(root, "old"), filepath.Join(root, "fresh"), filepath.Join(root, "derived")
	export(t, in(orig), old, opt)
	export(t, in(reduced), fresh, opt)
	edit := func(name string, fix bool, fn func([]byte) []byte) {
		b, err := os.ReadFile(filepath.Join(old, name))
		if err != nil {
			t.Fatal(err)
		}
		b = fn(b)
		if err := os.WriteFile(filepath.Join(old, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if fix {
			fixRecord(t, old, name, b)
		}
	}
	other, err := os.ReadFile(filepath.Join(old, "part-00000.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	edit("part-00000.parquet", false, func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b })
	edit("part-00001.parquet", true, func(b []byte) []byte { b[len(b)/3] ^= 0x40; return b })
	// The first file in place of the third, its record fixed: pages of
	// the right layout, but the first shard's documents (more of them
	// than the third shard's).
	edit("part-00002.parquet", true, func([]byte) []byte { return other })
	o := opt
	o.Reuse = &Reuse{Dir: old, Removed: removed}
	before := DocsReadFromShards()
	export(t, in(reduced), derived, o)
	sameExportDirs(t, fresh, derived, "damaged")
	if n, want := DocsReadFromShards()-before, int64(len(docs)-len(removed)); n != want {
		t.Fatalf("%d documents read from the shards, want %d (every file damaged)", n, want)
	}
}

// TestDeriveSizeCaps derives files whose blocks end at the size caps (a
// document of 9 MiB ends its JSONL block and its Parquet page group
// whatever its id) for removals around it: the bytes are a fresh
// export's, JSONL and Parquet.
func TestDeriveSizeCaps(t *testing.T) {
	docs := webDocs(t, 120, 300, 6)
	pool := realText(t)
	var big []byte
	for len(big) < 9<<20 {
		big = append(big, pool[:min(len(pool), 9<<20-len(big))]...)
	}
	docs[60].Text = string(bytes.ToValidUTF8(big, []byte("\uFFFD")))
	parts := [][]*shards.Document{docs[:100], docs[100:]}
	root := t.TempDir()
	orig := filepath.Join(root, "orig")
	writeCutDocDir(t, orig, parts)
	cases := []map[string]bool{
		{docs[59].ID: true},
		{docs[61].ID: true, docs[3].ID: true},
	}
	for _, opt := range []Options{{Format: FormatJSONL}, {Format: FormatParquet, RowGroupBytes: 1 << 20}} {
		old := filepath.Join(root, "old-"+string(opt.Format))
		export(t, openDocInput(t, orig), old, opt)
		for k, removed := range cases {
			in := filepath.Join(root, fmt.Sprintf("in-%s-%d", opt.Format, k))
			writeReducedDir(t, in, orig, parts, removed)
			fresh, derived := filepath.Join(root, fmt.Sprintf("fresh-%s-%d", opt.Format, k)), filepath.Join(root, fmt.Sprintf("derived-%s-%d", opt.Format, k))
			export(t, openDocInput(t, in), fresh, opt)
			o := opt
			o.Reuse = &Reuse{Dir: old, Removed: removed}
			before := DocsReadFromShards()
			export(t, openDocInput(t, in), derived, o)
			if n := DocsReadFromShards() - before; n != 0 {
				t.Fatalf("%s case %d: %d documents read from the shards", opt.Format, k, n)
			}
			sameExportDirs(t, fresh, derived, fmt.Sprintf("%s case %d", opt.Format, k))
		}
	}
}

// TestParquetGroupBytes checks the size a derived export gives a copied
// page group without decompressing its text (what places the row-group
// cuts) against shards.DocBytes of the group's documents, decoded, and
// those documents against the ones exported, for every group of a file.
func TestParquetGroupBytes(t *testing.T) {
	docs := wikiDocs(t)[:800]
	root := t.TempDir()
	writeCutDocDir(t, filepath.Join(root, "in"), [][]*shards.Document{docs})
	for _, comp := range []string{"zstd", "snappy", "none"} {
		out := filepath.Join(root, comp)
		p := export(t, openDocInput(t, filepath.Join(root, "in")), out, Options{Format: FormatParquet, Compression: comp, RowGroupBytes: 64 << 10})
		pc, err := newPageCodec(parquetCodec(comp), docZstdLevel)
		if err != nil {
			t.Fatal(err)
		}
		groups, err := readPageGroups(filepath.Join(out, p.Files[0].Name), p.Files[0], pc, pageLayout{pages: docPagesValue(), ncols: docColumns, list: -1})
		if err != nil {
			t.Fatal(err)
		}
		var gd groupDecoder
		i := 0
		for k, g := range groups {
			got, err := gd.groupBytes(g, pc)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := gd.decode(g, pc)
			if err != nil {
				t.Fatal(err)
			}
			var want int64
			for j := range dec {
				want += shards.DocBytes(&dec[j])
				if !sameDoc(&dec[j], docs[i]) {
					t.Fatalf("%s: group %d row %d decodes to %+v, want %+v", comp, k, j, dec[j], *docs[i])
				}
				i++
			}
			if got != want {
				t.Fatalf("%s: group %d: %d bytes from the headers, %d from its documents", comp, k, got, want)
			}
		}
		if i != len(docs) {
			t.Fatalf("%s: %d documents in the groups, want %d", comp, i, len(docs))
		}
	}
}

// checkLinked checks that exactly n files of the export in out are the
// earlier export's files (hard links: the same inodes, nothing written).
func checkLinked(t *testing.T, earlier, out string, n int) {
	t.Helper()
	olds, err := os.ReadDir(earlier)
	if err != nil {
		t.Fatal(err)
	}
	var oldInfos []os.FileInfo
	for _, e := range olds {
		if fi, err := e.Info(); err == nil && e.Name() != SidecarName {
			oldInfos = append(oldInfos, fi)
		}
	}
	news, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	same := 0
	for _, e := range news {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range oldInfos {
			if os.SameFile(fi, o) {
				same++
			}
		}
	}
	if same != n {
		t.Fatalf("%d files of %s are links to %s's, want %d", same, out, earlier, n)
	}
}

// TestLinkUnchangedFallsBack: an unchanged shard's earlier file is linked
// only when the earlier export was written by this code and the file
// matches its record; otherwise it is derived or exported again, with
// the same bytes.
func TestLinkUnchangedFallsBack(t *testing.T) {
	docs := webDocs(t, 400, 300, 5)
	parts := partition(docs, 90<<10)
	if len(parts) < 3 {
		t.Fatalf("%d shards; the test wants 3", len(parts))
	}
	root := t.TempDir()
	orig, in := filepath.Join(root, "orig"), filepath.Join(root, "in")
	writeCutDocDir(t, orig, parts)
	removed := map[string]bool{parts[1][3].ID: true}
	writeReducedDir(t, in, orig, parts, removed)
	unchanged := len(parts) - 1
	opt := Options{Format: FormatJSONL}
	fresh := filepath.Join(root, "fresh")
	export(t, openDocInput(t, in), fresh, opt)
	for k, c := range []struct {
		name   string
		damage func(t *testing.T, dir string, p *Provenance)
		linked int
	}{
		{"as written", func(*testing.T, string, *Provenance) {}, unchanged},
		{"another writer", func(t *testing.T, dir string, p *Provenance) {
			p.Writer = "smelt-export/0"
			writeProvenance(t, dir, p)
		}, 0},
		{"no writer recorded", func(t *testing.T, dir string, p *Provenance) {
			p.Writer = ""
			writeProvenance(t, dir, p)
		}, 0},
		{"an unchanged shard's file damaged", func(t *testing.T, dir string, p *Provenance) {
			f := filepath.Join(dir, p.Files[0].Name)
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 1
			if err := os.WriteFile(f, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, unchanged - 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := filepath.Join(root, fmt.Sprint("base", k))
			p := export(t, openDocInput(t, orig), base, opt)
			c.damage(t, base, p)
			o := opt
			o.Reuse = &Reuse{Dir: base, Removed: removed}
			out := filepath.Join(root, fmt.Sprint("out", k))
			before := filesLinked.Load()
			export(t, openDocInput(t, in), out, o)
			sameExportDirs(t, fresh, out, c.name)
			if n := filesLinked.Load() - before; n != int64(c.linked) {
				t.Fatalf("%d files linked, want %d", n, c.linked)
			}
			checkLinked(t, base, out, c.linked)
		})
	}
}

// writeProvenance rewrites an export's export.json from p.
func writeProvenance(t *testing.T, dir string, p *Provenance) {
	t.Helper()
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, SidecarName), data, 0o644); err != nil {
		t.Fatal(err)
	}
}
