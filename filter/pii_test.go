package filter

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

// labelled is one line of testdata/pii_labelled.txt: the text with the
// marks removed and the marked spans.
type labelled struct {
	line  int
	text  string
	spans []piiMatch
}

var markRE = regexp.MustCompile(`\[\[(email|ip|phone|credit_card|iban):(.*?)\]\]`)

func readLabelled(t *testing.T) []labelled {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "pii_labelled.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []labelled
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		if strings.HasPrefix(raw, "#") || strings.TrimSpace(raw) == "" {
			continue
		}
		l := labelled{line: n}
		var b strings.Builder
		pos := 0
		for _, m := range markRE.FindAllStringSubmatchIndex(raw, -1) {
			b.WriteString(raw[pos:m[0]])
			start := b.Len()
			b.WriteString(raw[m[4]:m[5]])
			l.spans = append(l.spans, piiMatch{start, b.Len(), raw[m[2]:m[3]]})
			pos = m[1]
		}
		b.WriteString(raw[pos:])
		l.text = b.String()
		if strings.Contains(l.text, "[[email:") || strings.Contains(l.text, "[[ip:") || strings.Contains(l.text, "[[phone:") {
			t.Fatalf("line %d: unparsed mark in %q", n, raw)
		}
		out = append(out, l)
	}
	return out
}

// piiScores is precision and recall per kind over the labelled set.
type piiScores struct {
	tp, fp, fn map[string]int
	errs       []string
}

func scorePII(t *testing.T, p *PII, set []labelled) piiScores {
	s := piiScores{tp: map[string]int{}, fp: map[string]int{}, fn: map[string]int{}}
	for _, l := range set {
		got := p.Find(l.text)
		for _, g := range got {
			if slices.Contains(l.spans, g) {
				s.tp[g.kind]++
			} else {
				s.fp[g.kind]++
				s.errs = append(s.errs, fmt.Sprintf("line %d: false %s %q in %q", l.line, g.kind, l.text[g.start:g.end], l.text))
			}
		}
		for _, w := range l.spans {
			if !slices.Contains(got, w) {
				s.fn[w.kind]++
				s.errs = append(s.errs, fmt.Sprintf("line %d: missed %s %q in %q", l.line, w.kind, l.text[w.start:w.end], l.text))
			}
		}
	}
	return s
}

func (s piiScores) table() string {
	var b strings.Builder
	b.WriteString("| kind | spans | precision | recall |\n|---|---:|---:|---:|\n")
	for _, k := range []string{PIIEmail, PIIIP, PIIPhone, PIICreditCard, PIIIBAN} {
		tp, fp, fn := s.tp[k], s.fp[k], s.fn[k]
		fmt.Fprintf(&b, "| %s | %d | %.3f | %.3f |\n", k, tp+fn, ratio(tp, tp+fp), ratio(tp, tp+fn))
	}
	return b.String()
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

// TestPIILabelled scores the rule on the labelled set: precision and
// recall per kind must be >= 0.95, and the README's table must be the one
// this test computes (SMELT_UPDATE_README=1 rewrites it).
func TestPIILabelled(t *testing.T) {
	set := readLabelled(t)
	if len(set) < 300 {
		t.Fatalf("labelled set has %d lines, want >= 300", len(set))
	}
	neg := 0
	for _, l := range set {
		if len(l.spans) == 0 {
			neg++
		}
	}
	s := scorePII(t, DefaultPII(), set)
	for _, e := range s.errs {
		t.Log(e)
	}
	table := s.table()
	t.Logf("%d lines (%d look-alikes without PII):\n%s", len(set), neg, table)
	for _, k := range PIIKinds {
		tp, fp, fn := s.tp[k], s.fp[k], s.fn[k]
		if tp+fn < 25 {
			t.Errorf("%s: only %d labelled spans, want >= 25", k, tp+fn)
		}
		if p, r := ratio(tp, tp+fp), ratio(tp, tp+fn); p < 0.95 || r < 0.95 {
			t.Errorf("%s: precision %.3f recall %.3f, want >= 0.95", k, p, r)
		}
	}
	checkReadmeBlock(t, "pii-eval", fmt.Sprintf("Measured by `go test ./filter -run TestPIILabelled` on filter/testdata/pii_labelled.txt (%d lines, %d of them look-alikes without PII):\n\n%s", len(set), neg, table))
}

// checkReadmeBlock compares docs/decontam-pii.md's text between
// <!-- NAME --> and <!-- /NAME --> with want, or rewrites it when
// SMELT_UPDATE_README=1. (The table lived in the README before issue 26.)
func checkReadmeBlock(t *testing.T, name, want string) {
	t.Helper()
	path := filepath.Join("..", "docs", "decontam-pii.md")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("README: %v", err)
	}
	open, closeTag := "<!-- "+name+" -->\n", "<!-- /"+name+" -->"
	i := strings.Index(string(data), open)
	j := strings.Index(string(data), closeTag)
	if i < 0 || j < i {
		t.Fatalf("%s has no %s...%s block for the measured table", path, strings.TrimSpace(open), closeTag)
	}
	got := string(data[i+len(open) : j])
	if got == want {
		return
	}
	if os.Getenv("SMELT_UPDATE_README") == "1" {
		out := string(data[:i+len(open)]) + want + string(data[j:])
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s's %s table is not what the test measured; run SMELT_UPDATE_README=1 go test ./filter -run %s\nwant:\n%s\ngot:\n%s", path, name, t.Name(), want, got)
}

func TestPIIAnnotate(t *testing.T) {
	p := DefaultPII()
	d := &shards.Document{Text: "Mail bob@example.com or call +44 20 7946 0958 from 93.184.216.34.", Meta: `{"url_host":"x"}`}
	var pl Pipeline
	pl.Rules = []Rule{p}
	o := pl.Apply(d)
	want := "Mail <EMAIL> or call <PHONE> from <IP>."
	if d.Text != want {
		t.Fatalf("text %q, want %q", d.Text, want)
	}
	if o.Counts["pii/email"] != 1 || o.Counts["pii/phone"] != 1 || o.Counts["pii/ip"] != 1 || o.Removed[RulePII] == 0 {
		t.Fatalf("outcome %+v", o)
	}
	if !strings.Contains(d.Meta, `"url_host":"x"`) || !strings.Contains(d.Meta, `"pii":{"spans":[{"kind":"email","start":5,"end":12}`) {
		t.Fatalf("meta %s", d.Meta)
	}
	// Kinds and placeholders are settings.
	p2 := &PII{Kinds: []string{PIIEmail}, Placeholders: map[string]string{PIIEmail: "[email]"}}
	d2 := &shards.Document{Text: "Mail bob@example.com or call +44 20 7946 0958."}
	a := p2.Annotate(d2)
	if a.Text != "Mail [email] or call +44 20 7946 0958." {
		t.Fatalf("custom: %q", a.Text)
	}
	// Private addresses only when asked.
	d3 := &shards.Document{Text: "router 192.168.1.1 and ::1"}
	if a := DefaultPII().Annotate(d3); a.Changed {
		t.Fatalf("private address redacted by default: %q", a.Text)
	}
	if a := (&PII{Kinds: []string{PIIIP}, PrivateIPs: true}).Annotate(d3); a.Text != "router <IP> and <IP>" {
		t.Fatalf("private_ips: %q", a.Text)
	}
	if err := (&PII{Kinds: []string{"ssn"}}).validate(); err == nil {
		t.Fatal("unknown kind accepted")
	}
}

// TestPIICrawl runs the rule over the real crawl documents: it must change
// no text outside the spans it reports, and every span must re-detect as
// its kind.
func TestPIICrawl(t *testing.T) {
	p := DefaultPII()
	total := 0
	for _, d := range crawlDocs(t) {
		ms := p.Find(d.Text)
		total += len(ms)
		for _, m := range ms {
			t.Logf("%s: %s %q", d.ID, m.kind, d.Text[m.start:m.end])
		}
		a := p.Annotate(&shards.Document{Text: d.Text})
		if len(ms) == 0 {
			if a.Changed {
				t.Fatalf("%s: changed without a match", d.ID)
			}
			continue
		}
		// Undo the replacements from the note: the original comes back.
		note := a.Note.(*PIINote)
		var b strings.Builder
		pos := 0
		for i, sp := range note.Spans {
			b.WriteString(a.Text[pos:sp.Start])
			b.WriteString(d.Text[ms[i].start:ms[i].end])
			pos = sp.End
		}
		b.WriteString(a.Text[pos:])
		if b.String() != d.Text {
			t.Fatalf("%s: note does not locate the replacements", d.ID)
		}
	}
	t.Logf("%d PII spans in the real crawl documents", total)
}
