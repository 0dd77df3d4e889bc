package report

// Issue 26 W5: the report checks a token manifest against its shards, so a
// hand-edited manifest is flagged, not shown as truth.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

func writeSmallTokens(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tokenize")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tok := shards.TokenizerInfo{Name: "test", RanksHash: "x", VocabSize: 1000}
	w, err := shards.NewTokenWriter(dir, shards.TokenWriterOptions{Tokenizer: tok, TargetBytes: 200})
	if err != nil {
		t.Fatal(err)
	}
	for d := range 5 {
		toks := make([]uint32, 40)
		for i := range toks {
			toks[i] = uint32(d*40 + i)
		}
		if err := w.Write("doc"+string(rune('a'+d)), "src", toks); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m := &shards.Manifest{Kind: shards.KindTokens, Stage: "tokenize", Shards: w.Shards(), Totals: shards.SumShards(w.Shards()), Tokenizer: &tok}
	if err := shards.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	return dir
}

func editTokens(t *testing.T, dir string, totals, perShard bool) {
	t.Helper()
	p := filepath.Join(dir, shards.ManifestName)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m shards.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if perShard {
		for i := range m.Shards {
			m.Shards[i].Tokens *= 1_000_000_000
		}
	}
	if totals {
		m.Totals.Tokens = shards.SumShards(m.Shards).Tokens
		if !perShard {
			m.Totals.Tokens = 1_000_000_000_000_000
		}
	}
	data, _ = json.Marshal(&m)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTokenTotalsVerified(t *testing.T) {
	dir := writeSmallTokens(t)
	st, err := LoadStep(dir)
	if err != nil || st.TokensUnverified != "" {
		t.Fatalf("honest manifest: %v %q", err, st.TokensUnverified)
	}
	r := &Report{Run: &Run{Steps: []*Step{st}}}
	r.buildTokens()
	if len(r.TokenRows) != 1 || r.TokenRows[0].Tokens != 200 {
		t.Fatalf("rows %+v", r.TokenRows)
	}

	// Totals edited alone: the manifest is refused when read.
	editTokens(t, dir, true, false)
	if _, err := LoadStep(dir); err == nil || !strings.Contains(err.Error(), "edited by hand") {
		t.Errorf("edited totals: %v", err)
	}

	// Totals and every shard's count edited consistently: flagged.
	dir = writeSmallTokens(t)
	editTokens(t, dir, true, true)
	st, err = LoadStep(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.TokensUnverified, "tokens") {
		t.Fatalf("edited manifest not flagged: %q", st.TokensUnverified)
	}
	r = &Report{Run: &Run{Steps: []*Step{st}}}
	r.buildTokens()
	if len(r.TokenRows) != 1 || r.TokenRows[0].Tokens != 0 || !strings.Contains(r.TokenRows[0].Source, "NOT VERIFIED") {
		t.Errorf("rows %+v", r.TokenRows)
	}
}
