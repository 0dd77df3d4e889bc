package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestFlagNamesConsistent: a short flag means the same on every verb (-o
// the output, -j the workers or threads, -t the tokenizer, -v verbose),
// every output flag has -o and every worker flag -j, and --shard-mb has
// one type everywhere.
func TestFlagNamesConsistent(t *testing.T) {
	meaning := map[string][]string{
		"o": {"out"},
		"j": {"workers", "threads"},
		"t": {"tokenizer"},
		"v": {"verbose"},
	}
	shortOf := map[string]string{"out": "o", "workers": "j", "threads": "j"}
	var walk func(c *cobra.Command)
	checked := 0
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			checked++
			if f.Shorthand != "" {
				ok := false
				for _, n := range meaning[f.Shorthand] {
					ok = ok || n == f.Name
				}
				if !ok {
					t.Errorf("%s: -%s means --%s, elsewhere %v", c.CommandPath(), f.Shorthand, f.Name, meaning[f.Shorthand])
				}
			}
			if want, ok := shortOf[f.Name]; ok && f.Shorthand != want {
				t.Errorf("%s: --%s has no -%s", c.CommandPath(), f.Name, want)
			}
			if f.Name == "shard-mb" && f.Value.Type() != "float64" {
				t.Errorf("%s: --shard-mb is %s, not float64", c.CommandPath(), f.Value.Type())
			}
		})
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(newRootCmd())
	if checked < 50 {
		t.Fatalf("checked only %d flags", checked)
	}
}

// TestTokenizeReportsTokensPerSecond: smelt tokenize ends with its rate in
// tokens per second, beside MB/s.
func TestTokenizeReportsTokensPerSecond(t *testing.T) {
	dir := t.TempDir()
	var docs []*shards.Document
	for i := 0; i < 20; i++ {
		docs = append(docs, &shards.Document{ID: fmt.Sprintf("d%02d", i), Source: "web", Text: strings.Repeat("The quick brown fox. ", 5+i)})
	}
	writeDocs(t, filepath.Join(dir, "docs"), docs)
	out, err := runSmelt(t, "tokenize", filepath.Join(dir, "docs"), "-o", filepath.Join(dir, "tok"), "-t", "gpt2", "-j", "1")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	m, err := shards.ReadManifest(filepath.Join(dir, "tok"))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("20 documents, %d tokens in", m.Totals.Tokens); !strings.Contains(out, want) || !regexp.MustCompile(`; \d+ tokens/s, [0-9.]+ MB/s`).MatchString(out) {
		t.Errorf("tokenize printed %q, want %q and a tokens/s rate", out, want)
	}
}
