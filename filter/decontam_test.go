package filter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/smelt-dev/smelt/shards"
)

const wikiTest = "clean_text/wikitext-2_test.txt"

// evalPara is one WikiText-2 test paragraph used as a benchmark record.
type evalPara struct {
	line  int // 1-based line in the file: the record id is "L<line>"
	words []string
}

// wikiParas returns the WikiText-2 test paragraphs with at least minWords
// words (headings and blank lines are left out).
func wikiParas(t testing.TB, minWords int) []evalPara {
	needShared(t)
	var out []evalPara
	for i, l := range strings.Split(readText(t, wikiTest), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "=") {
			continue
		}
		if w := strings.Fields(l); len(w) >= minWords {
			out = append(out, evalPara{i + 1, w})
		}
	}
	return out
}

// detok turns WikiText's tokenised form back into ordinary prose, as a page
// quoting the article would have it.
func detok(words []string) string {
	s := " " + strings.Join(words, " ") + " "
	for _, r := range [][2]string{{" @-@ ", "-"}, {" @,@ ", ","}, {" @.@ ", "."}, {" , ", ", "}, {" . ", ". "},
		{" ; ", "; "}, {" : ", ": "}, {" 's ", "'s "}, {" ( ", " ("}, {" ) ", ") "}} {
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	return strings.TrimSpace(s)
}

// passage is n normalised words of a paragraph, starting at the first word
// at or after token from, detokenised (as a page quoting the article would
// have it; WikiText's tokens include punctuation, which is not a word).
func passage(p evalPara, from, n int) string {
	text := strings.Join(p.words, " ")
	off := len(strings.Join(p.words[:from], " "))
	ws := normWords(text, nil)
	k := 0
	for k < len(ws) && int(ws[k].start) < off {
		k++
	}
	if k+n > len(ws) {
		panic(fmt.Sprintf("paragraph L%d has fewer than %d words after token %d", p.line, n, from))
	}
	return detok(strings.Fields(text[ws[k].start:ws[k+n-1].end]))
}

// normString is the normalised words of s joined by spaces.
func normString(s string) string {
	var b strings.Builder
	for _, w := range normWords(s, nil) {
		fmt.Fprintf(&b, "%x ", w.h) // the normalised word, as its hash
	}
	return b.String()
}

// wikiIndex builds an index of the WikiText-2 test split as the eval set
// "wikitext2_test" (plain text: one record per line).
func wikiIndex(t testing.TB, n int) *Index {
	t.Helper()
	needShared(t)
	b := &IndexBuilder{N: n}
	if _, err := AddEvalSet(context.Background(), b, "wikitext2_test", filepath.Join(sharedData, wikiTest), EvalOptions{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "wiki.dcx")
	if _, err := b.Write(path); err != nil {
		t.Fatal(err)
	}
	return openTestIndex(t, path)
}

// openTestIndex opens an index for the rest of the test.
func openTestIndex(t testing.TB, path string) *Index {
	t.Helper()
	x, err := OpenIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func decontamRule(x *Index, policy string) *Decontam {
	r := DefaultDecontam()
	r.Policy = policy
	r.Index = "(test)"
	r.UseIndex(x)
	return r
}

// inject puts p into text after the sentence end nearest the middle.
func inject(text, p string) string {
	mid := len(text) / 2
	k := strings.Index(text[mid:], ". ")
	if k < 0 {
		return text + " " + p
	}
	at := mid + k + 2
	return text[:at] + p + " " + text[at:]
}

func TestNormWords(t *testing.T) {
	words := func(s string) []string {
		var out []string
		for _, w := range normWords(s, nil) {
			out = append(out, s[w.start:w.end])
		}
		return out
	}
	got := strings.Join(words("The well @-@ known Café, 5,000 m… (naïve)"), "|")
	if got != "The|well @-@ known|Café|5,000|m|naïve" {
		t.Fatalf("words %q", got)
	}
	h := func(s string) uint64 {
		var out uint64
		ngramHashes(normWords(s, nil), 3, func(_ int, h uint64) bool { out = h; return false })
		return out
	}
	if h("Well-known CAFÉ here") != h("well @-@ known café ... here") {
		t.Fatal("normalisation differs across case and punctuation")
	}
	if h("well known cafe") == h("known well cafe") {
		t.Fatal("word order ignored")
	}
}

// TestDecontamDrop: crawl documents (the real WET and JSONL samples) with a
// 13+-word passage of a WikiText-2 test paragraph injected are dropped with
// the paragraph as the value; the clean documents, and documents with only
// 12 words of a paragraph, are untouched.
func TestDecontamDrop(t *testing.T) {
	x := wikiIndex(t, DefaultNGram)
	rule := decontamRule(x, DecontamDrop)
	crawl := crawlDocs(t)
	paras := wikiParas(t, 40)
	if len(crawl) < 40 || len(paras) < 100 {
		t.Fatalf("%d crawl docs, %d paragraphs", len(crawl), len(paras))
	}
	for _, d := range crawl {
		if a := rule.Annotate(d); a.Reason != "" || a.Changed || a.Note != nil {
			t.Fatalf("clean crawl document %s touched: %+v", d.ID, a)
		}
	}
	caught := 0
	for i, d := range crawl {
		p := paras[(i*37)%len(paras)]
		n := 13 + i%20
		from := (i * 7) % (len(p.words) - 2*n)
		c := &shards.Document{ID: d.ID, Text: inject(d.Text, passage(p, from, n))}
		a := rule.Annotate(c)
		want := "wikitext2_test#L" + strconv.Itoa(p.line)
		if a.Reason != DecontamNGram {
			t.Errorf("%s: %d-word passage of %s not caught", d.ID, n, want)
			continue
		}
		note := a.Note.(*DecontamNote)
		found := false
		for _, m := range note.Matches {
			found = found || m.Set+"#"+m.Record == want
			if !strings.Contains(normString(strings.Join(p.words, " ")), normString(c.Text[m.Start:m.End])) {
				t.Errorf("%s: match %d-%d %q is not the passage", d.ID, m.Start, m.End, c.Text[m.Start:m.End])
			}
		}
		if !found || a.Counts[StatDecontamRecord+want] != 1 || a.Counts[StatDecontamNGrams+"wikitext2_test"] < n-12 {
			t.Errorf("%s: value %q, note %+v, counts %v; want %s", d.ID, a.Value, note.Matches, a.Counts, want)
		}
		caught++
		// Twelve words are not a 13-gram (alone, so that no crawl word
		// next to them can happen to continue the paragraph).
		c12 := &shards.Document{ID: d.ID, Text: "Zyxqv: " + passage(p, from, 12) + "."}
		if a := rule.Annotate(c12); a.Reason != "" {
			t.Errorf("%s: 12-word passage dropped (%s): %+v", d.ID, a.Value, a.Note)
		}
		if a := rule.Annotate(&shards.Document{Text: "Zyxqv: " + passage(p, from, 13) + "."}); a.Reason != DecontamNGram {
			t.Errorf("%s: 13-word passage alone kept", d.ID)
		}
	}
	t.Logf("%d of %d contaminated crawl documents caught; %d clean ones untouched", caught, len(crawl), len(crawl))
}

// longDoc concatenates real crawl documents into one text of at least n
// bytes.
func longDoc(t *testing.T, n int) string {
	var b strings.Builder
	for _, d := range crawlDocs(t) {
		if b.Len() >= n {
			break
		}
		if strings.Count(d.Text, " ") < 200 {
			continue
		}
		b.WriteString(strings.TrimSpace(d.Text))
		b.WriteString("\n\n")
	}
	if b.Len() < n {
		t.Fatalf("crawl text has %d bytes, want %d", b.Len(), n)
	}
	return b.String()
}

// TestDecontamGPT3: the gpt3 policy removes the passage and 200 characters
// around it and keeps the rest of a long document; it drops a document cut
// into more than 10 pieces, and one with nothing of 200 characters left.
func TestDecontamGPT3(t *testing.T) {
	x := wikiIndex(t, DefaultNGram)
	rule := decontamRule(x, DecontamGPT3)
	paras := wikiParas(t, 40)
	base := longDoc(t, 20_000)
	p := paras[10]
	pass := passage(p, 3, 30)
	text := inject(base, pass)
	d := &shards.Document{ID: "long", Text: text}
	var pl Pipeline
	pl.Rules = []Rule{rule}
	o := pl.Apply(d)
	if d.Drop != nil {
		t.Fatalf("long document dropped: %+v", d.Drop)
	}
	if strings.Contains(d.Text, pass) {
		t.Fatal("passage still in the text")
	}
	if a := rule.Annotate(&shards.Document{Text: d.Text}); a.Reason != "" || a.Note != nil {
		t.Fatalf("output still matches: %+v", a)
	}
	at := strings.Index(text, pass)
	before, after := text[:backRunes(text, at, 200)], text[fwdRunes(text, at+len(pass), 200):]
	if !strings.HasPrefix(d.Text, strings.TrimSpace(before)) || !strings.HasSuffix(d.Text, strings.TrimSpace(after)) {
		t.Fatal("the text before and after the cut is not kept")
	}
	kept := len(d.Text)
	if lost := len(text) - kept; lost < len(pass)+300 || lost > len(pass)+2*200*4 {
		t.Fatalf("removed %d bytes for a %d-byte passage", lost, len(pass))
	}
	if o.Removed[RuleDecontam] != len(text)-kept {
		t.Fatalf("removed %v", o.Removed)
	}
	var meta struct{ Decontam DecontamNote }
	if err := json.Unmarshal([]byte(d.Meta), &meta); err != nil || len(meta.Decontam.Cuts) != 1 || len(meta.Decontam.Matches) != 1 {
		t.Fatalf("meta %s (%v)", d.Meta, err)
	}
	if c := meta.Decontam.Cuts[0]; d.Text[c-2:c] != "\n\n" {
		t.Fatalf("cut at %d is not where the pieces were joined", c)
	}

	// Eleven passages far apart: 12 pieces.
	many := base
	step := len(base) / 12
	for k := 11; k >= 1; k-- {
		at := k * step
		at += strings.Index(many[at:], " ") + 1
		many = many[:at] + passage(paras[20+k], 0, 14) + " " + many[at:]
	}
	a := rule.Annotate(&shards.Document{Text: many})
	if a.Reason != DecontamPieces || !strings.HasPrefix(a.Value, "12 wikitext2_test#L") {
		t.Fatalf("11 passages: %q %q", a.Reason, a.Value)
	}

	// A short document that is mostly the passage: nothing left.
	short := "Quoted from the encyclopedia: " + pass + " End of quote."
	if a := rule.Annotate(&shards.Document{Text: short}); a.Reason != DecontamNGram {
		t.Fatalf("short contaminated document: %q", a.Reason)
	}
}

// TestDecontamEvalFormats reads one benchmark as JSONL (question and list
// of choices), Parquet (the same columns) and a directory, and catches a
// passage that runs from a question into its answer.
func TestDecontamEvalFormats(t *testing.T) {
	paras := wikiParas(t, 40)[:200]
	dir := t.TempDir()
	var jl bytes.Buffer
	var recs []rec
	for i, p := range paras {
		half := len(p.words) / 2
		r := rec{ID: fmt.Sprintf("q%03d", i), Question: detok(p.words[:half]), Choices: []string{detok(p.words[half:]), "none of the above"}}
		recs = append(recs, r)
		line, _ := json.Marshal(r)
		jl.Write(line)
		jl.WriteByte('\n')
	}
	jl.WriteString("{not json\n")
	if err := os.WriteFile(filepath.Join(dir, "qa.jsonl"), jl.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	pqDir := filepath.Join(dir, "pq")
	os.Mkdir(pqDir, 0o755)
	writeQAParquet(t, filepath.Join(pqDir, "part-0.parquet"), recs)

	b := &IndexBuilder{}
	opt := EvalOptions{Fields: []string{"question", "choices"}}
	st, err := AddEvalSet(context.Background(), b, "qa", filepath.Join(dir, "qa.jsonl"), opt)
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 200 || st.Bad != 1 || !strings.Contains(st.Errors[0], "qa.jsonl: line 201 (byte ") {
		t.Fatalf("jsonl stats %+v", st)
	}
	st, err = AddEvalSet(context.Background(), b, "qa_pq", pqDir, opt)
	if err != nil || st.Records != 200 || st.Files != 1 {
		t.Fatalf("parquet: %+v %v", st, err)
	}
	if _, err := AddEvalSet(context.Background(), b, "qa", pqDir, opt); err == nil {
		t.Fatal("duplicate set name accepted")
	}
	path := filepath.Join(dir, "qa.dcx")
	sets, err := b.Write(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(sets) != 2 || sets[0].NGrams != sets[1].NGrams || sets[0].NGrams == 0 {
		t.Fatalf("sets %+v", sets)
	}
	x, err := OpenIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	rule := decontamRule(x, DecontamDrop)
	// 7 words of the question and 7 of the answer.
	p := paras[42]
	half := len(p.words) / 2
	doc := &shards.Document{Text: "Some crawl text here. " + passage(p, half-7, 14) + " and more crawl text."}
	a := rule.Annotate(doc)
	if a.Reason != DecontamNGram || a.Value != "qa#q042" || a.Counts[StatDecontamRecord+"qa_pq#part-0.parquet:q042"] != 1 {
		t.Fatalf("question-to-answer passage: %q %q %v", a.Reason, a.Value, a.Counts)
	}
}

// rec is one question-answer eval record.
type rec struct {
	ID       string   `json:"id"`
	Question string   `json:"question"`
	Choices  []string `json:"choices"`
}

func writeQAParquet(t *testing.T, path string, recs []rec) {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String},
		{Name: "question", Type: arrow.BinaryTypes.String}, {Name: "choices", Type: arrow.ListOf(arrow.BinaryTypes.String)}}, nil)
	bld := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer bld.Release()
	ids, qs, cs := bld.Field(0).(*array.StringBuilder), bld.Field(1).(*array.StringBuilder), bld.Field(2).(*array.ListBuilder)
	vb := cs.ValueBuilder().(*array.StringBuilder)
	for _, r := range recs {
		ids.Append(r.ID)
		qs.Append(r.Question)
		cs.Append(true)
		for _, c := range r.Choices {
			vb.Append(c)
		}
	}
	rec := bld.NewRecord()
	defer rec.Release()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(schema, f, nil, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestIndexSpillDeterministic: spilling sorted runs gives the same file as
// sorting in memory, and a damaged index is refused with its byte offset.
func TestIndexSpillDeterministic(t *testing.T) {
	needShared(t)
	build := func(run int) []byte {
		b := &IndexBuilder{RunEntries: run}
		for _, s := range []struct{ name, rel string }{{"wiki", wikiTest}, {"jargon", "clean_text/debian_jargon-text_4.4.7_jargon.txt.gz"}} {
			if _, err := AddEvalSet(context.Background(), b, s.name, filepath.Join(sharedData, s.rel), EvalOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		path := filepath.Join(t.TempDir(), "x.dcx")
		if _, err := b.Write(path); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	mem, spilled := build(0), build(10_000)
	// A killed run's temporary files are cleared by the next.
	sdir := t.TempDir()
	stale := filepath.Join(sdir, ".x.dcx.tmp-123")
	os.WriteFile(stale, []byte("partial"), 0o644)
	sb := &IndexBuilder{}
	set, _ := sb.AddSet("s")
	sb.Add(set, "r", "one two three four five six seven eight nine ten eleven twelve thirteen")
	if _, err := sb.Write(filepath.Join(sdir, "x.dcx")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatal("stale temporary index file left behind")
	}
	if sb.Entries() != 1 {
		t.Fatalf("%d entries for one 13-word record", sb.Entries())
	}
	if !bytes.Equal(mem, spilled) {
		t.Fatal("spilled index differs from the in-memory one")
	}
	path := filepath.Join(t.TempDir(), "cut.dcx")
	os.WriteFile(path, mem[:len(mem)-10], 0o644)
	if _, err := OpenIndex(path); err == nil || !strings.Contains(err.Error(), "byte 64") {
		t.Fatalf("truncated index: %v", err)
	}
	os.WriteFile(path, []byte("not an index at all, just text that is long enough to have a header..........................................................."), 0o644)
	if _, err := OpenIndex(path); err == nil || !strings.Contains(err.Error(), "bad magic") {
		t.Fatalf("text file: %v", err)
	}
	x, err := parseIndex("mem", mem)
	if err != nil {
		t.Fatal(err)
	}
	if x.Sets[0].Name != "wiki" || x.Sets[1].Name != "jargon" || x.Entries() < 180_000 {
		t.Fatalf("sets %+v entries %d", x.Sets, x.Entries())
	}
}

// TestDecontamStage runs the rule in a filter stage: stats list matches
// per eval set and the contaminated records, and the dropped documents
// carry their matches.
func TestDecontamStage(t *testing.T) {
	x := wikiIndex(t, DefaultNGram)
	paras := wikiParas(t, 40)
	var docs []*shards.Document
	want := map[string]bool{}
	for i, d := range crawlDocs(t) {
		c := *d
		c.ID = fmt.Sprintf("doc%03d", i)
		if i%3 == 0 {
			p := paras[i]
			c.Text = inject(c.Text, passage(p, 0, 20))
			want["wikitext2_test#L"+strconv.Itoa(p.line)] = true
		}
		docs = append(docs, &c)
	}
	in := writeInput(t, docs)
	cfg := DefaultConfig()
	cfg.Rules = []string{RuleDecontam, RulePII}
	cfg.Decontam.UseIndex(x)
	cfg.Decontam.Index = "(test)"
	p, err := cfg.Pipeline()
	if err != nil {
		t.Fatal(err)
	}
	// The index's content is part of the run's fingerprint.
	if fp, _ := json.Marshal(cfg); !strings.Contains(string(fp), x.ID) {
		t.Fatalf("settings do not name the index content: %s", fp)
	}
	s := &Stage{Pipeline: p}
	out := filepath.Join(t.TempDir(), "out")
	st, err := s.Run(context.Background(), RunOptions{Inputs: []string{in}, Out: out, Workers: 2, TargetBytes: 20_000, Settings: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Dropped[DecontamNGram].Docs; got != int64(len(want)) {
		t.Fatalf("dropped %d, want %d", got, len(want))
	}
	m := st.Metrics[StatDecontamNGrams+"wikitext2_test"]
	if m == nil || m.N != int64(len(want)) || m.Sum < float64(8*len(want)) {
		t.Fatalf("ngram metric %+v", m)
	}
	for k := range want {
		if st.Metrics[StatDecontamRecord+k] == nil {
			t.Errorf("contaminated record %s not in the stats", k)
		}
	}
	if st.Metrics[StatPII+PIIEmail] == nil || st.Modified[RulePII].Docs == 0 {
		t.Fatalf("pii stats missing: %v %v", st.Metrics, st.Modified)
	}
}
