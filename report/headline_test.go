package report

import (
	"bytes"
	"context"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
	"golang.org/x/net/html"
)

// TestReportHeadline: the report leads with what went in, what came out
// and why: raw -> final documents, the duplicate rate, the top five drop
// reasons, tokens and passes per source; all checked against the shards.
func TestReportHeadline(t *testing.T) {
	f := getFixture(t)
	run, doc, src := renderReport(t, f.Dir, Options{})
	if hi, fi := strings.Index(src, `id="headline"`), strings.Index(src, `id="funnel"`); hi < 0 || hi > fi {
		t.Fatalf("the headline is not the first section (at %d, funnel at %d)", hi, fi)
	}
	// Raw -> final: ingest's documents, and what dedup (the last document
	// step) kept, as stored in the shards.
	var ingested int64
	for _, st := range run.Steps {
		if st.Stage() == "ingest" {
			ingested += int64(len(testutil.ReadDocs(t, st.Dir)))
		}
	}
	dd := stepNamed(t, run, "dedup")
	final := int64(len(testutil.ReadDocs(t, dd.Dir)))
	head := text(one(t, doc, byID("head-docs"), "documents card"))
	if want := fmtNum(float64(ingested)) + " → " + fmtNum(float64(final)); !strings.Contains(head, want) {
		t.Errorf("headline documents %q, want %q", head, want)
	}
	dups := int64(len(testutil.ReadDocs(t, filepath.Join(dd.Dir, shards.DroppedDir))))
	if want := strconv.FormatFloat(100*float64(dups)/float64(dd.Stats.In.Docs), 'f', 1, 64) + "%"; !strings.Contains(text(one(t, doc, byID("head-dups"), "duplicates card")), want) || dups == 0 {
		t.Errorf("duplicate rate: want %s (%d duplicates)", want, dups)
	}
	// Top drop reasons: five, the largest first, and no reason outside
	// them drops more than the fifth.
	rows := findAll(doc, byClass("head-drop"))
	if len(rows) == 0 || len(rows) > 5 {
		t.Fatalf("%d top drop reasons", len(rows))
	}
	var counts []int64
	for _, tr := range rows {
		n, _ := strconv.ParseInt(strings.ReplaceAll(text(tr.FirstChild.NextSibling.NextSibling), ",", ""), 10, 64)
		counts = append(counts, n)
	}
	for i := 1; i < len(counts); i++ {
		if counts[i] > counts[i-1] {
			t.Errorf("top drops not in order: %v", counts)
		}
	}
	for _, tr := range findAll(doc, byClass("drop")) {
		if n := dataInt(t, tr, "data-docs"); len(rows) == 5 && n > counts[4] {
			found := false
			for _, h := range rows {
				found = found || attr(h, "data-reason") == attr(tr, "data-reason")
			}
			if !found {
				t.Errorf("%s drops %d documents but is not among the top five %v", attr(tr, "data-reason"), n, counts)
			}
		}
	}
	// Tokens and passes per source: the passes are the loader's, steps x
	// batch x (seq_len+1) tokens over what each source holds.
	srcs := findAll(doc, byClass("head-source"))
	if len(srcs) == 0 {
		t.Fatal("no tokens per source in the headline")
	}
	budget := 200.0 * 8 * 65
	for _, p := range run.Plan.Rows {
		want := p.Weight * budget / float64(p.Available)
		if math.Abs(want-p.Epochs) > 0.01 {
			t.Errorf("%s: %.3f passes, want %.3f", p.Name, p.Epochs, want)
		}
		found := false
		for _, tr := range srcs {
			found = found || attr(tr, "data-source") == p.Name && strings.Contains(text(tr), strconv.FormatFloat(p.Epochs, 'f', 2, 64))
		}
		if !found {
			t.Errorf("headline lacks %s's %.2f passes", p.Name, p.Epochs)
		}
	}
	// Empty cells are blank, never "0 0 B"; dedup ran, so its section says
	// what it found; one language chart, one series per step.
	if strings.Contains(src, ">0 <span") || strings.Contains(src, "0 0 B") {
		t.Error(`the report shows "0 0 B" in a cell that does not apply`)
	}
	if strings.Contains(src, "No dedup step") || len(findAll(doc, byClass("dedup-summary"))) == 0 {
		t.Error("the dedup section does not summarise the dedup step")
	}
	if n := len(findAll(doc, func(n *html.Node) bool { return strings.HasPrefix(attr(n, "id"), "chart-langs") })); n != 1 {
		t.Errorf("%d language charts, want 1", n)
	}
	// The quality chart sets the kept documents against those the keep
	// policy dropped, as the dropped side output holds them.
	var policy int64
	for _, st := range run.Steps {
		if st.Stage() != "filter" || st.Dropped == nil {
			continue
		}
		for _, d := range testutil.ReadDocs(t, filepath.Join(st.Dir, shards.DroppedDir)) {
			if d.Drop.Reason == reasonPareto || d.Drop.Reason == reasonThreshold {
				policy++
			}
		}
	}
	q := text(one(t, doc, byClass("quality-summary"), "quality summary"))
	if want := fmtNum(float64(policy)) + " dropped by the classifier's keep policy"; policy == 0 || !strings.Contains(q, want) {
		t.Errorf("quality: %q, want %q", q, want)
	}
}

// TestReportDedupNoDuplicates: a dedup step that ran and found nothing
// says so (it used to say "No dedup step.").
func TestReportDedupNoDuplicates(t *testing.T) {
	st := &Step{Name: "dedup", Stats: &shards.Stats{Stage: "dedup", In: shards.Count{Docs: 39, Bytes: 1000}, Out: shards.Count{Docs: 39, Bytes: 1000},
		Dropped: map[string]shards.Count{"dedup:exact": {}, "dedup:minhash": {}}}}
	run := &Run{Path: "x", IsRun: true, Steps: []*Step{st}}
	var b bytes.Buffer
	if err := Write(context.Background(), &b, run); err != nil {
		t.Fatal(err)
	}
	if s := b.String(); strings.Contains(s, "No dedup step") || !strings.Contains(s, "0 of 39 documents dropped as duplicates (0.0%): no duplicates found") {
		t.Errorf("dedup section:\n%s", s[strings.Index(s, `id="dedup"`):][:400])
	}
}
