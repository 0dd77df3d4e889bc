package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeVerbExamples: every example in the README's verb table names a
// real verb and parses with its flags, so the front door never shows a
// flag that does not exist (such as -o where only --out was accepted).
func TestReadmeVerbExamples(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(data), "\n## Verbs\n")
	if !ok {
		t.Fatal("README.md has no ## Verbs section")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	example := regexp.MustCompile("`(smelt [^`]+)`")
	n := 0
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 {
			continue
		}
		m := example.FindStringSubmatch(cells[3])
		if m == nil {
			continue
		}
		args := strings.Fields(m[1])[1:]
		if strings.Contains(m[1], "...") {
			continue // a placeholder row for a verb being added
		}
		root := newRootCmd()
		c, rest, err := root.Find(args)
		if err != nil || c == root {
			t.Errorf("README example %q: no such verb (%v)", m[1], err)
			continue
		}
		if err := c.ParseFlags(rest); err != nil {
			t.Errorf("README example %q: %v", m[1], err)
		}
		n++
	}
	if n < 15 {
		t.Errorf("checked %d README verb examples, want at least 15", n)
	}
}
