package export

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

// tokenGroups is the rows' expected token page groups (ids).
func tokenGroups(docs []shardDoc) []string {
	var out []string
	var cur strings.Builder
	n := 0
	for _, d := range docs {
		cur.WriteString(d.id + "\x00")
		n += len(d.tokens)
		if docPageCutK(d.id, tokenPageK) || n >= tokenPageIDs {
			out = append(out, cur.String())
			cur.Reset()
			n = 0
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// TestParquetTokensTakedownReuse is TestParquetDocsTakedownReuse for
// token Parquet: the real corpus's GPT-2 documents (repeated, each
// repetition's ids rotated, as in the benchmark), some removed, exported
// fresh and reusing the first export: the same bytes, the untouched page
// groups copied, and the files read back by Arrow Go. Not parallel: it
// reads the package's copy counter.
func TestParquetTokensTakedownReuse(t *testing.T) {
	c := realCorpus(t)
	base := readTokenDocs(t, c.tokens[c.sources[0]])
	tok := *mustManifest(t, c.tokens[c.sources[0]]).Tokenizer
	var docs []shardDoc
	for rep := 0; rep < 4; rep++ {
		for _, d := range base {
			docs = append(docs, shardDoc{id: fmt.Sprintf("%s#%d", d.id, rep), source: d.source, tokens: rotate(nil, d.tokens, rep, tok.EOT)})
		}
	}
	var parts [][]shardDoc
	for i := 0; i < len(docs); i += 160 {
		parts = append(parts, docs[i:min(i+160, len(docs))])
	}
	// One token writer per part (shard i of the directory), so that a
	// reduced copy keeps the shards' names, as a takedown's do.
	write := func(dir string, removed map[string]bool) [][]shardDoc {
		var kept [][]shardDoc
		var infos []shards.ShardInfo
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, p := range parts {
			w, err := shards.NewTokenWriter(dir, shards.TokenWriterOptions{Tokenizer: tok, FirstIndex: i, TargetBytes: 1 << 30})
			if err != nil {
				t.Fatal(err)
			}
			var k []shardDoc
			for _, d := range p {
				if removed[d.id] {
					continue
				}
				k = append(k, d)
				if err := w.Write(d.id, d.source, d.tokens); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			kept = append(kept, k)
			infos = append(infos, w.Shards()...)
		}
		m := &shards.Manifest{Kind: shards.KindTokens, Stage: "test", Shards: infos, Totals: shards.SumShards(infos), Tokenizer: &tok}
		if err := shards.WriteManifest(dir, m); err != nil {
			t.Fatal(err)
		}
		return kept
	}
	root := t.TempDir()
	orig := filepath.Join(root, "orig")
	write(orig, nil)
	in := func(dir string) []*Input {
		i, err := OpenInput("gpt2", dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		return []*Input{i}
	}
	opt := Options{Format: FormatParquet, RowGroupBytes: 64 << 10}
	old := filepath.Join(root, "old")
	export(t, in(orig), old, opt)
	total := 0
	for _, p := range parts {
		total += len(tokenGroups(p))
	}
	firstCut := ""
	for _, d := range docs {
		if docPageCutK(d.id, tokenPageK) {
			firstCut = d.id
			break
		}
	}
	random := func(frac float64, seed uint64) map[string]bool {
		r := rand.New(rand.NewPCG(seed, 28))
		m := map[string]bool{}
		for _, d := range docs {
			if r.Float64() < frac {
				m[d.id] = true
			}
		}
		return m
	}
	for k, tc := range []struct {
		name    string
		removed map[string]bool
	}{
		{"none", map[string]bool{}},
		{"first", map[string]bool{docs[0].id: true}},
		{"cut point", map[string]bool{firstCut: true}},
		{"1%", random(0.01, 3)},
		{"10%", random(0.10, 4)},
	} {
		reduced := filepath.Join(root, fmt.Sprintf("in%d", k))
		kept := write(reduced, tc.removed)
		fresh, reused := filepath.Join(root, fmt.Sprintf("fresh%d", k)), filepath.Join(root, fmt.Sprintf("reused%d", k))
		export(t, in(reduced), fresh, opt)
		before := tokenGroupsCopied.Load()
		o := opt
		o.Reuse = &Reuse{Dir: old}
		export(t, in(reduced), reused, o)
		copied := tokenGroupsCopied.Load() - before
		sameExportDirs(t, fresh, reused, tc.name)
		want := 0
		for i, p := range parts {
			now := map[string]bool{}
			for _, g := range tokenGroups(kept[i]) {
				now[g] = true
			}
			for _, g := range tokenGroups(p) {
				if now[g] {
					want++
				}
			}
		}
		if copied != int64(want) || (tc.name == "none" && want != total) {
			t.Fatalf("%s: %d token page groups copied, want %d of %d", tc.name, copied, want, total)
		}
		t.Logf("%s: %d documents removed, %d of %d page groups copied", tc.name, len(tc.removed), copied, total)
		if tc.name == "1%" {
			var back []shardDoc
			for _, f := range globbed(t, reused, "*.parquet") {
				d, _, _ := readTokenParquet(t, f, &tok, "zstd")
				back = append(back, d...)
			}
			var wantDocs []shardDoc
			for _, p := range kept {
				wantDocs = append(wantDocs, p...)
			}
			if len(back) != len(wantDocs) {
				t.Fatalf("%d documents read back, want %d", len(back), len(wantDocs))
			}
			for i := range back {
				if back[i].id != wantDocs[i].id || fmt.Sprint(back[i].tokens) != fmt.Sprint(wantDocs[i].tokens) {
					t.Fatalf("row %d: read back %s, want %s", i, back[i].id, wantDocs[i].id)
				}
			}
		}
	}
	// A damaged earlier file (its record rewritten to match) is not
	// used; the others still are, and the bytes are a fresh export's.
	f := filepath.Join(old, "part-00001.parquet")
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/3] ^= 0x10
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	fixRecord(t, old, "part-00001.parquet", data)
	before := tokenGroupsCopied.Load()
	out := filepath.Join(root, "damaged")
	export(t, in(filepath.Join(root, "in0")), out, Options{Format: FormatParquet, RowGroupBytes: 64 << 10, Reuse: &Reuse{Dir: old}})
	sameExportDirs(t, filepath.Join(root, "fresh0"), out, "damaged")
	if copied, want := tokenGroupsCopied.Load()-before, int64(total-len(tokenGroups(parts[1]))); copied != want {
		t.Fatalf("damaged earlier file: %d page groups copied, want %d", copied, want)
	}
}

// BenchmarkParquetTokensReuse exports BenchmarkExport's 32 M GPT-2 ids to
// Parquet (zstd), then the same shards less 1 % of the documents at
// random, from scratch and reusing the first export: MB of ids per
// CPU-second and the share of page groups copied.
//
//	go test ./export -run '^$' -bench ParquetTokensReuse -benchtime 2x
func BenchmarkParquetTokensReuse(b *testing.B) {
	dir := benchTokens(b)
	m := mustManifest(b, dir)
	tok := *m.Tokenizer
	root := b.TempDir()
	reduced := filepath.Join(root, "reduced")
	if err := os.MkdirAll(reduced, 0o755); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(28, 5))
	removed := map[string]bool{}
	var infos []shards.ShardInfo
	var ids int64
	for i, info := range m.Shards {
		ts, err := shards.ReadTokenShard(filepath.Join(dir, info.Name), &info, tok.VocabSize)
		if err != nil {
			b.Fatal(err)
		}
		w, err := shards.NewTokenWriter(reduced, shards.TokenWriterOptions{Tokenizer: tok, FirstIndex: i, TargetBytes: 1 << 40})
		if err != nil {
			b.Fatal(err)
		}
		for j := 0; j < ts.Rows(); j++ {
			if r.Float64() < 0.01 {
				removed[ts.ID(j)] = true
				continue
			}
			toks := ts.AppendTokens(nil, j, 0, ts.Len(j))
			ids += int64(len(toks))
			if err := w.Write(ts.ID(j), ts.Source(j), toks); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		infos = append(infos, w.Shards()...)
	}
	if err := shards.WriteManifest(reduced, &shards.Manifest{Kind: shards.KindTokens, Stage: "test", Shards: infos, Totals: shards.SumShards(infos), Tokenizer: &tok}); err != nil {
		b.Fatal(err)
	}
	open := func(d string) []*Input {
		in, err := OpenInput("bench", d, 0)
		if err != nil {
			b.Fatal(err)
		}
		return []*Input{in}
	}
	old := filepath.Join(root, "old")
	if _, err := Run(context.Background(), open(dir), old, Options{Format: FormatParquet}); err != nil {
		b.Fatal(err)
	}
	for _, reuse := range []bool{false, true} {
		name := "fresh"
		if reuse {
			name = "reuse"
		}
		b.Run(name+"-1%", func(b *testing.B) {
			b.SetBytes(2 * ids)
			cpu := cpuTime()
			copied, encoded := tokenGroupsCopied.Load(), tokenGroupsEncoded.Load()
			for i := 0; i < b.N; i++ {
				out := filepath.Join(root, "out")
				os.RemoveAll(out)
				opt := Options{Format: FormatParquet}
				if reuse {
					opt.Reuse = &Reuse{Dir: old}
				}
				if _, err := Run(context.Background(), open(reduced), out, opt); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu, 2*ids)
			c, e := tokenGroupsCopied.Load()-copied, tokenGroupsEncoded.Load()-encoded
			b.ReportMetric(100*float64(c)/float64(c+e), "%groups-copied")
		})
	}
}
