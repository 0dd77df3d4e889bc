package export

import (
	"bytes"
	"context"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/tokenize"
)

// TestExportWhateverTokenCompression tokenizes the same real documents
// into uncompressed token shards (the default) and zstd ones, and exports
// both in every token format: every exported file is the same byte for
// byte (only export.json, which records its inputs' checksums, differs).
func TestExportWhateverTokenCompression(t *testing.T) {
	c := realCorpus(t)
	s := c.sources[0]
	tok, err := tokenize.GetOrLoad("gpt2")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	zdir := filepath.Join(root, "zstd")
	if _, err := shards.Tokenize(context.Background(), shards.TokenizeConfig{Inputs: []string{c.docs[s]}, Out: zdir, Encoder: tok, Workers: 2,
		TargetBytes: 40 << 10, Compression: shards.TokenCompressionZstd}); err != nil {
		t.Fatal(err)
	}
	nm, zm := mustManifest(t, c.tokens[s]), mustManifest(t, zdir)
	if nm.Compression != shards.TokenCompressionNone || zm.Compression != shards.TokenCompressionZstd {
		t.Fatalf("manifests say %q and %q, want none and zstd", nm.Compression, zm.Compression)
	}
	if nm.Totals.Rows != zm.Totals.Rows || nm.Totals.Tokens != zm.Totals.Tokens || len(nm.Shards) != len(zm.Shards) || zm.Totals.Bytes >= nm.Totals.Bytes {
		t.Fatalf("uncompressed %+v in %d shards, zstd %+v in %d", nm.Totals, len(nm.Shards), zm.Totals, len(zm.Shards))
	}
	for _, f := range []Format{FormatNanoGPT, FormatMegatron, FormatLLMC, FormatParquet} {
		t.Run(string(f), func(t *testing.T) {
			var outs [2]string
			for i, dir := range []string{c.tokens[s], zdir} {
				in, err := OpenInput(s, dir, 0)
				if err != nil {
					t.Fatal(err)
				}
				outs[i] = filepath.Join(root, string(f), []string{"none", "zstd"}[i])
				export(t, []*Input{in}, outs[i], Options{Format: f})
			}
			files, err := os.ReadDir(outs[0])
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, e := range files {
				if e.Name() == SidecarName {
					continue
				}
				a, err := os.ReadFile(filepath.Join(outs[0], e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(filepath.Join(outs[1], e.Name()))
				if err != nil {
					t.Fatalf("%s: only the export of uncompressed shards has it: %v", e.Name(), err)
				}
				if !bytes.Equal(a, b) {
					t.Fatalf("%s differs between the exports of uncompressed and zstd token shards", e.Name())
				}
				n++
			}
			if rest, _ := os.ReadDir(outs[1]); n == 0 || len(rest) != len(files) {
				t.Fatalf("%d files compared; %d and %d files", n, len(files), len(rest))
			}
		})
	}
}

// TestPolarsReadsBothTokenCompressions has Polars read the same documents'
// token shards uncompressed and zstd, and checks rows, token counts and
// the ids in order (a position-weighted sum) against smelt's.
func TestPolarsReadsBothTokenCompressions(t *testing.T) {
	read := nodeReaders(t)
	c := realCorpus(t)
	s := c.sources[0]
	tok, err := tokenize.GetOrLoad("gpt2")
	if err != nil {
		t.Fatal(err)
	}
	zdir := filepath.Join(t.TempDir(), "zstd")
	if _, err := shards.Tokenize(context.Background(), shards.TokenizeConfig{Inputs: []string{c.docs[s]}, Out: zdir, Encoder: tok, Workers: 2,
		TargetBytes: 40 << 10, Compression: shards.TokenCompressionZstd}); err != nil {
		t.Fatal(err)
	}
	want := readTokenDocs(t, c.tokens[s])
	var n int64
	for _, d := range want {
		n += int64(len(d.tokens))
	}
	wsum := weightedSum(want)
	for _, dir := range []string{c.tokens[s], zdir} {
		m := mustManifest(t, dir)
		var rows, toks int64
		ws := new(big.Int)
		for _, r := range read(append([]string{"polars"}, shardFiles(dir, m)...)...) {
			rows += num(t, r, "rows")
			toks += num(t, r, "token_count")
			ws.Add(ws, bigNum(t, r, "token_wsum"))
		}
		if rows != int64(len(want)) || toks != n || ws.Cmp(wsum) != 0 {
			t.Errorf("%s (%s): Polars reads %d rows, %d tokens, weighted sum %v; smelt has %d, %d, %v", dir, m.Compression, rows, toks, ws, len(want), n, wsum)
		}
	}
}
