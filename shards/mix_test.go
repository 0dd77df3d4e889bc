package shards

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseMixFileStrict(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"sources:\n  - {name: a, path: x, weight: 1}\n  - {name: b, path: y, wieght: 1}\n", "line 3"},
		{"sources:\n  - name: a\n    path: x\n    weight: 1\nseed: 3\n", "line 5"},
		{"sources:\n  - {name: cc, path: x, weight: 0}\n", `"cc"`},
		{"sources:\n  - {name: cc, path: x, weight: -0.5}\n", `"cc"`},
		{"sources:\n  - {name: cc, path: x}\n", `"cc"`},
		{"sources:\n  - {name: wiki, weight: 1}\n", `"wiki"`},
		{"sources:\n  - {path: x, weight: 1}\n", "no name"},
		{"sources:\n  - {name: a, path: x, weight: 1}\n  - {name: a, path: y, weight: 1}\n", "twice"},
		{"sources: []\n", "no sources"},
		{"", "empty"},
		{"sources:\n  - {name: a, path: x, weight: lots}\n", "line 2"},
	} {
		_, err := ParseMixFile([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: want an error containing %s, got %v", c.yaml, c.want, err)
		}
	}
	mf, err := ParseMixFile([]byte("sources:\n  - {name: a, path: x, weight: 3}\n  - name: b\n    path: /abs/y\n    weight: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(mf.Sources) != 2 || mf.Sources[1].Path != "/abs/y" || mf.Sources[0].Weight != 3 {
		t.Fatalf("%+v", mf)
	}
}

func TestLoadMix(t *testing.T) {
	path := testMix(t, []float64{3, 1}, []*testSrc{shortDocs(0, 20), shortDocs(1, 10)}, 0)
	m, err := LoadMix(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.VocabSize() != testVocab || m.EOT() != testEOT || m.Tokenizer() != "test" {
		t.Fatalf("tokenizer %d %d %s", m.VocabSize(), m.EOT(), m.Tokenizer())
	}
	if m.Sources[0].Weight != 0.75 || m.Sources[1].Weight != 0.25 {
		t.Fatalf("weights %v %v, want 0.75 0.25", m.Sources[0].Weight, m.Sources[1].Weight)
	}
	if m.Sources[0].Dir != filepath.Join(filepath.Dir(path), "src0") {
		t.Fatalf("relative path resolved to %s", m.Sources[0].Dir)
	}
	// A missing directory names the source.
	bad := filepath.Join(filepath.Dir(path), "bad.yaml")
	os.WriteFile(bad, []byte("sources:\n  - {name: gone, path: nowhere, weight: 1}\n"), 0o644)
	if _, err := LoadMix(bad); err == nil || !strings.Contains(err.Error(), `"gone"`) {
		t.Fatalf("want an error naming the source, got %v", err)
	}
	// Sources with different tokenizers do not mix.
	other := filepath.Join(filepath.Dir(path), "other")
	makeTokenDir(t, other, 5, 3, 0)
	om, _ := ReadManifest(other)
	om.Tokenizer.RanksHash = "different"
	WriteManifest(other, om)
	os.WriteFile(bad, []byte("sources:\n  - {name: a, path: src0, weight: 1}\n  - {name: o, path: other, weight: 1}\n"), 0o644)
	if _, err := LoadMix(bad); err == nil || !strings.Contains(err.Error(), `"o"`) {
		t.Fatalf("want a tokenizer mismatch naming the source, got %v", err)
	}
	// One directory is a mix of one source.
	dm, err := OpenMixDir(filepath.Join(filepath.Dir(path), "src1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dm.Sources) != 1 || dm.Sources[0].Weight != 1 || dm.Sources[0].Name != "src1" || dm.Sources[0].Docs() != 10 {
		t.Fatalf("%+v", dm.Sources[0])
	}
}

// TestPlanGPT3 checks the plan against the table GPT-3 published (Brown et
// al. 2020, table 2.2) for a 300B-token run. Its weights sum to 1.01 and
// its token counts are rounded, so the rows are compared at the table's
// precision where the paper's own arithmetic is consistent (Common Crawl,
// Books1, Books2, within 0.1 epoch); WebText2 and Wikipedia are listed with
// 2.9 and 3.4 epochs there, which their rounded counts do not reproduce.
func TestPlanGPT3(t *testing.T) {
	m := &Mix{}
	for _, s := range []struct {
		name   string
		tokens int64
		weight float64
	}{{"common_crawl", 410e9, 0.60}, {"webtext2", 19e9, 0.22}, {"books1", 12e9, 0.08}, {"books2", 55e9, 0.08}, {"wikipedia", 3e9, 0.03}} {
		m.Sources = append(m.Sources, &MixSource{Name: s.name, Weight: s.weight / 1.01, Manifest: &Manifest{Totals: Totals{Tokens: s.tokens}}})
	}
	total, err := ParseTokens("300B")
	if err != nil {
		t.Fatal(err)
	}
	rows := m.Plan(total)
	for _, c := range []struct {
		i      int
		epochs float64
	}{{0, 0.44}, {2, 1.9}, {3, 0.43}} {
		if math.Abs(rows[c.i].Epochs-c.epochs) > 0.1 {
			t.Errorf("%s: %.3f epochs, GPT-3 says %.2f", rows[c.i].Name, rows[c.i].Epochs, c.epochs)
		}
	}
	var drawn int64
	for _, r := range rows {
		drawn += r.Drawn
	}
	if d := drawn - total; d < -5 || d > 5 {
		t.Fatalf("drawn %d, budget %d", drawn, total)
	}
	var out bytes.Buffer
	n, err := WritePlan(&out, rows)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 || !strings.Contains(out.String(), "410B") || !strings.Contains(out.String(), "common_crawl") {
		t.Fatalf("%d warnings:\n%s", n, out.String())
	}
	// At 1T tokens WebText2, Books1 and Wikipedia repeat more than 4 times: warn.
	out.Reset()
	n, _ = WritePlan(&out, m.Plan(1e12))
	if n != 3 || !strings.Contains(out.String(), `warning: source "wikipedia" would be repeated 9.9 times`) {
		t.Fatalf("%d warnings:\n%s", n, out.String())
	}
}

func TestParseTokens(t *testing.T) {
	for in, want := range map[string]int64{"300B": 300e9, "1.5T": 1.5e12, "20m": 20e6, "64k": 64e3, "12345": 12345, " 2G ": 2e9, "1_000K": 1e6} {
		got, err := ParseTokens(in)
		if err != nil || got != want {
			t.Errorf("ParseTokens(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "B", "-1B", "1X", "0", "1e30T", "NaNB"} {
		if _, err := ParseTokens(in); err == nil {
			t.Errorf("ParseTokens(%q) accepted", in)
		}
	}
	for n, want := range map[int64]string{410e9: "410B", 3.1e9: "3.1B", 45e6: "45M", 999: "999", 1.2e12: "1.2T"} {
		if got := FormatTokens(n); got != want {
			t.Errorf("FormatTokens(%d) = %s, want %s", n, got, want)
		}
	}
}
