package main

import (
	"testing"

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
