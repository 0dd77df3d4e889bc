package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

// TestTokenizeCompressionFlag: smelt tokenize writes uncompressed token
// shards by default and zstd ones with --token-compression zstd (the
// manifest says which, the rows are the same, the files smaller), and
// refuses another value before reading anything.
func TestTokenizeCompressionFlag(t *testing.T) {
	root := t.TempDir()
	var docs []*shards.Document
	for i := 0; i < 40; i++ {
		docs = append(docs, &shards.Document{ID: fmt.Sprintf("d%02d", i), Source: "web",
			Text: strings.Repeat(fmt.Sprintf("Document %d says the same thing again. ", i), 20+i)})
	}
	in := filepath.Join(root, "docs")
	writeDocs(t, in, docs)
	var ms []*shards.Manifest
	for _, c := range []struct{ dir, flag string }{{"none", ""}, {"zstd", "zstd"}} {
		args := []string{"tokenize", in, "--out", filepath.Join(root, c.dir), "--tokenizer", "gpt2"}
		if c.flag != "" {
			args = append(args, "--token-compression", c.flag)
		}
		if out, err := runSmelt(t, args...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		m, err := shards.ReadManifest(filepath.Join(root, c.dir))
		if err != nil {
			t.Fatal(err)
		}
		if m.Compression != c.dir {
			t.Fatalf("--token-compression %q: manifest says %q", c.flag, m.Compression)
		}
		ms = append(ms, m)
	}
	if ms[0].Totals.Rows != 40 || ms[0].Totals.Tokens != ms[1].Totals.Tokens || ms[1].Totals.Bytes >= ms[0].Totals.Bytes {
		t.Fatalf("uncompressed %+v, zstd %+v", ms[0].Totals, ms[1].Totals)
	}
	out, err := runSmelt(t, "tokenize", in, "--out", filepath.Join(root, "bad"), "--tokenizer", "gpt2", "--token-compression", "gzip")
	if err == nil || !strings.Contains(err.Error(), `--token-compression: token compression "gzip": want none or zstd`) {
		t.Fatalf("--token-compression gzip: %v\n%s", err, out)
	}
}
