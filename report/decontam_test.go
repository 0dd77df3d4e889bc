package report

import (
	"encoding/json"
	"testing"

	"github.com/smelt-dev/smelt/filter"
	"github.com/smelt-dev/smelt/shards"
)

// TestAnnotated marks the placeholders and matches a rule noted, and
// leaves out marks that no longer fit the text.
func TestAnnotated(t *testing.T) {
	p := filter.DefaultPII()
	a := p.Annotate(&shards.Document{Text: "Write to bob@example.com or call +1 415 555 2671 today."})
	meta, _ := json.Marshal(map[string]any{"pii": a.Note})
	d := &Doc{Document: shards.Document{Text: a.Text, Meta: string(meta)}}
	an := d.Annotated()
	if an == nil || an.Kinds["email"] != 1 || an.Kinds["phone"] != 1 {
		t.Fatalf("annotations %+v", an)
	}
	var marked []string
	for _, s := range an.Segments {
		if s.Mark != "" {
			marked = append(marked, s.Mark+"="+s.Text)
		}
	}
	if len(marked) != 2 || marked[0] != "pii: email=<EMAIL>" || marked[1] != "pii: phone=<PHONE>" {
		t.Fatalf("marks %v", marked)
	}
	// A later rule rewrote the text: the offsets no longer hold the
	// placeholders, so nothing is marked (the counts stay).
	d.Text = "Something else entirely, and longer than before."
	for _, s := range d.Annotated().Segments {
		if s.Mark != "" {
			t.Fatalf("stale mark %+v", s)
		}
	}
	if (&Doc{Document: shards.Document{Text: "x", Meta: `{"url":"u"}`}}).Annotated() != nil {
		t.Fatal("annotations without a note")
	}
}
