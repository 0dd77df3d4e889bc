package pipelines

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/export"
	"github.com/smelt-dev/smelt/shards"
)

// TestExportSteps runs a recipe with export entries: Megatron datasets
// named after the sources with the recipe's weights, nanoGPT files, and
// Parquet of the final documents, each with its provenance.
func TestExportSteps(t *testing.T) {
	dir := t.TempDir()
	path := setupRun(t, dir, false)
	data, _ := os.ReadFile(path)
	data = append(data, []byte(`export:
  - format: megatron
  - format: nanogpt
    val_fraction: 0.1
  - format: parquet
  - format: parquet
    of: tokens
`)...)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := LoadRecipe(path)
	if err != nil {
		t.Fatal(err)
	}
	run, err := Open(filepath.Join(dir, "run"), r, OpenOptions{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.RunLocal(context.Background(), LocalOptions{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	prov := func(step string) *export.Provenance {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(run.Dir, step, export.SidecarName))
		if err != nil {
			t.Fatal(err)
		}
		var p export.Provenance
		if err := json.Unmarshal(data, &p); err != nil {
			t.Fatal(err)
		}
		return &p
	}
	tok, err := shards.ReadManifest(filepath.Join(run.Dir, "tokenize"))
	if err != nil {
		t.Fatal(err)
	}
	mg := prov("export-megatron")
	if mg.DataPath != "0.7 crawl 0.3 books" || mg.Tokens != tok.Totals.Tokens || mg.Docs != tok.Totals.Rows {
		t.Fatalf("megatron export: blend %q, %d docs %d tokens; tokenize has %d docs %d tokens", mg.DataPath, mg.Docs, mg.Tokens, tok.Totals.Rows, tok.Totals.Tokens)
	}
	for _, f := range []string{"crawl.bin", "crawl.idx", "books.bin", "books.idx", export.DataPathFile} {
		if _, err := os.Stat(filepath.Join(run.Dir, "export-megatron", f)); err != nil {
			t.Fatal(err)
		}
	}
	// The recipe weighs its sources, so nanoGPT's train.bin is the mix
	// drawn by those weights: the inputs' tokens' worth of whole
	// sequences of SeqLen+1, and val.bin the held-out split.
	ng := prov("export-nanogpt")
	if ng.Options.ValFraction != 0.1 {
		t.Fatalf("nanogpt export: val fraction %v", ng.Options.ValFraction)
	}
	seq := int64(ng.Options.SeqLen)
	if seq == 0 {
		seq = int64(export.DefaultSeqLen)
	}
	byRole := map[string]int64{}
	for _, f := range ng.Files {
		byRole[f.Role] = f.Tokens
	}
	if train, val := byRole["train"], byRole["val"]; train%(seq+1) != 0 || train <= tok.Totals.Tokens-(seq+1) || train > tok.Totals.Tokens || val <= 0 || val >= tok.Totals.Tokens/2 || ng.Tokens != train+val {
		t.Fatalf("nanogpt export: train.bin %d tokens, val.bin %d, total %d; tokenize has %d (sequences of %d)", train, val, ng.Tokens, tok.Totals.Tokens, seq+1)
	}
	dd, err := shards.ReadManifest(filepath.Join(run.Dir, "dedup"))
	if err != nil {
		t.Fatal(err)
	}
	if pq := prov("export-parquet"); pq.Docs != dd.Totals.Rows || pq.Inputs[0].Kind != shards.KindDocuments {
		t.Fatalf("parquet export: %d docs, dedup kept %d", pq.Docs, dd.Totals.Rows)
	}
	if pt := prov("export-parquet-tokens"); pt.Tokens != tok.Totals.Tokens {
		t.Fatalf("parquet tokens export: %d tokens", pt.Tokens)
	}
	// Run again: nothing to do, nothing changes.
	before := prov("export-megatron")
	run2, err := Open(filepath.Join(dir, "run"), r, OpenOptions{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := run2.RunLocal(context.Background(), LocalOptions{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	if after := prov("export-megatron"); after.Fingerprint != before.Fingerprint {
		t.Fatal("rerun changed the export")
	}
}

func TestExportRecipeErrors(t *testing.T) {
	base := "name: x\nsources:\n  - {name: a, inputs: [a.txt], weight: 1}\ntokenizer: {name: gpt2}\n"
	for _, tc := range []struct{ yaml, want string }{
		{"export:\n  - format: hdf5\n", "unknown format"},
		{"export:\n  - format: megatron\n    of: documents\n", "only parquet"},
		{"export:\n  - format: jsonl\n  - format: jsonl\n", "listed twice"},
		{"export:\n  - format: jsonl\n    compresion: gzip\n", "compresion"},
	} {
		_, err := ParseRecipe([]byte(base+tc.yaml), t.TempDir())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
