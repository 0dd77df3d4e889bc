package ingest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/internal/testutil"
)

type fixedLang struct{}

func (fixedLang) DetectLanguage(text string) (string, float64) { return "xx", 0.25 }
func (fixedLang) Name() string                                 { return "fixed" }

// Options.LangID replaces whatlanggo in the lang and lang_score columns
// and in meta, and is part of the run's identity.
func TestLangIDOption(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "a.txt")
	if err := os.WriteFile(in, []byte("Das ist ein Text auf Deutsch, lang genug für eine Sprache."), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if _, err := Run(context.Background(), []string{in}, out, Options{Source: "t", LangID: fixedLang{}}); err != nil {
		t.Fatal(err)
	}
	docs := testutil.ReadDocs(t, out)
	if len(docs) != 1 || docs[0].Lang != "xx" || docs[0].LangScore != 0.25 || !strings.Contains(docs[0].Meta, `"lang":"xx"`) {
		t.Fatalf("docs %+v", docs)
	}
	// The same output directory with whatlanggo is another job.
	if _, err := Run(context.Background(), []string{in}, out, Options{Source: "t"}); err == nil {
		t.Error("a run with another language detector was accepted into the same output directory")
	}
	out2 := filepath.Join(dir, "out2")
	if _, err := Run(context.Background(), []string{in}, out2, Options{Source: "t"}); err != nil {
		t.Fatal(err)
	}
	if d := testutil.ReadDocs(t, out2); d[0].Lang != "de" {
		t.Errorf("whatlanggo: %q", d[0].Lang)
	}
}
