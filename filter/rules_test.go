package filter

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

func doc(text string) *shards.Document { return &shards.Document{ID: "t", Text: text} }

// words returns n space-separated copies of w (cycled from ws).
func words(n int, ws ...string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = ws[i%len(ws)]
	}
	return strings.Join(parts, " ")
}

type ruleCase struct {
	name         string
	text         string
	reason, want string // want = expected Drop.Value ("" to skip)
}

func runCases(t *testing.T, r Rule, cases []ruleCase) {
	t.Helper()
	for _, c := range cases {
		reason, value := r.Check(doc(c.text))
		if reason != c.reason || (c.want != "" && value != c.want) {
			t.Errorf("%s: %s: got (%q, %q), want (%q, %q)", r.Name(), c.name, reason, value, c.reason, c.want)
		}
		if reason != "" && !slices.Contains(r.Reasons(), reason) {
			t.Errorf("%s: %s: undeclared reason %q", r.Name(), c.name, reason)
		}
	}
}

// prose is 10 ordinary words including two Gopher stop words.
const prose = "the cat sat on a warm mat and purred softly"

func TestGopherQualityBoundaries(t *testing.T) {
	g := DefaultGopherQuality()
	runCases(t, g, []ruleCase{
		{"50 words pass", words(5, prose), "", ""},
		{"49 words", words(49, strings.Fields(prose)...), GopherTooFewWords, "49"},
		{"symbol words do not count", words(49, strings.Fields(prose)...) + " | — ...", GopherTooFewWords, "49"},
		{"mean 3 passes", words(60, "the", "cat", "and", "dog"), "", ""},
		{"mean below 3", words(60, "to", "of", "an"), GopherShortMeanWord, "2.0000"},
		{"mean 10 passes", words(58, "abcdefghij") + " the of", "", ""},
		{"mean above 10", words(60, "abcdefghijk") + " the of", GopherLongMeanWord, "10.7258"},
	})
	// Hash ratio: "#" over all tokens; 90 words + 10 "#" = 0.1 passes.
	base := words(90, strings.Fields(prose)...)
	runCases(t, g, []ruleCase{
		{"hash 0.1 passes", base + strings.Repeat(" #", 10), "", ""},
		{"hash above 0.1", base + strings.Repeat(" #", 11), GopherTooManyHashes, "0.1089"},
		{"ellipsis 0.1 passes", strings.Repeat("... ", 10) + base, "", ""},
		{"ellipsis above 0.1", strings.Repeat("… ", 11) + base, GopherTooManyEllipses, "0.1089"},
	})
	// Lines: 10 lines of 10 words.
	lines := func(prefix, suffix string, k int) string {
		var b []string
		for i := 0; i < 10; i++ {
			l := prose
			if i < k {
				l = prefix + l + suffix
			}
			b = append(b, l)
		}
		return strings.Join(b, "\n")
	}
	runCases(t, g, []ruleCase{
		{"90% bullets pass", lines("- ", "", 9), "", ""},
		{"all bullets", lines("  • ", "", 10), GopherTooManyBulletLines, "1.0000"},
		{"30% ellipsis lines pass", lines("", "...", 3), "", ""},
		{"40% ellipsis lines", lines("", "…", 4), GopherTooManyEllipsisEnds, "0.4000"},
	})
	// Alpha: 80 of 100 tokens with a letter passes, 79 does not.
	runCases(t, g, []ruleCase{
		{"80% alpha passes", words(80, strings.Fields(prose)...) + " " + words(20, "2014"), "", ""},
		{"79% alpha", words(79, strings.Fields(prose)...) + " " + words(21, "(12)"), GopherTooFewAlphaWords, "0.7900"},
	})
	runCases(t, g, []ruleCase{
		{"2 stop words pass", words(58, "cat", "sat", "on", "warm", "mat") + " The with", "", ""},
		{"1 stop word", words(59, "cat", "sat", "on", "warm", "mat") + " the", GopherTooFewStopWords, "1"},
	})
	off := DefaultGopherQuality()
	off.MinWords = -1
	runCases(t, off, []ruleCase{{"min words disabled", words(10, "the", "cat", "and"), "", ""}})
}

func TestGopherRepetitionBoundaries(t *testing.T) {
	only := func(set func(g *GopherRepetition)) *GopherRepetition {
		g := &GopherRepetition{DupLineFrac: -1, DupParaFrac: -1, DupLineCharFrac: -1, DupParaCharFrac: -1}
		set(g)
		return g
	}
	uniq := func(i int) string { return "line number " + string(rune('a'+i)) + " is unique here" }
	// 10 lines, k of them repeating line 0.
	dupLines := func(k int, sep string) string {
		var ls []string
		for i := 0; i < 10; i++ {
			if i > 0 && i <= k {
				ls = append(ls, uniq(0))
			} else {
				ls = append(ls, uniq(i))
			}
		}
		return strings.Join(ls, sep)
	}
	runCases(t, only(func(g *GopherRepetition) { g.DupLineFrac = 0.3 }), []ruleCase{
		{"3/10 dup lines pass", dupLines(3, "\n"), "", ""},
		{"4/10 dup lines", dupLines(4, "\n"), RepDupLineFrac, "0.4000"},
		{"blank lines are not lines", strings.ReplaceAll(dupLines(3, "\n"), "\n", "\n\n\n"), "", ""},
	})
	runCases(t, only(func(g *GopherRepetition) { g.DupParaFrac = 0.3 }), []ruleCase{
		{"3/10 dup paragraphs pass", dupLines(3, "\n\n"), "", ""},
		{"4/10 dup paragraphs", dupLines(4, "\n\n"), RepDupParaFrac, "0.4000"},
	})
	// Char fractions: each line is 28 bytes, joined by "\n": 10 lines = 289 bytes.
	// 2 dup lines = 56/289 = 0.1938 pass; 3 = 84/289 = 0.2907.
	runCases(t, only(func(g *GopherRepetition) { g.DupLineCharFrac = 0.2 }), []ruleCase{
		{"0.19 dup line chars pass", dupLines(2, "\n"), "", ""},
		{"0.29 dup line chars", dupLines(3, "\n"), RepDupLineCharFrac, "0.2907"},
	})
	runCases(t, only(func(g *GopherRepetition) { g.DupParaCharFrac = 0.2 }), []ruleCase{
		{"0.19 dup para chars", dupLines(2, "\n\n"), "", ""},
		{"dup para chars", dupLines(3, "\n\n"), RepDupParaCharFrac, ""},
	})
	// Top 2-gram: "aa bb" (5 chars) k times among unique filler words.
	filler := func(n int) string {
		var ws []string
		for i := 0; i < n; i++ {
			ws = append(ws, "w"+strings.Repeat(string(rune('a'+i%26)), 1+i/26))
		}
		return strings.Join(ws, " ")
	}
	top := only(func(g *GopherRepetition) { g.TopNGrams = map[int]float64{2: 0.2} })
	text := filler(40) + strings.Repeat(" aa bb", 10) // "aa bb" x10: 50 chars of len(text)
	frac := float64(10*5) / float64(len(text))
	reason, value := top.Check(doc(text))
	if (frac > 0.2) != (reason == RepTopNGram(2)) {
		t.Errorf("top 2-gram: frac %.4f, got %q %q", frac, reason, value)
	}
	if reason != "" && value != fmtRatio(frac) {
		t.Errorf("top 2-gram value %s, want %s", value, fmtRatio(frac))
	}
	// Duplicate 5-grams: a 5-gram repeated: the second copy's word chars count once.
	dup := only(func(g *GopherRepetition) { g.DupNGrams = map[int]float64{5: 0.15} })
	five := "alpha beta gamma delta epsilon" // 26 word chars
	text = filler(60) + " " + five + " one two three four six " + five
	want := 26.0 / float64(len(text))
	reason, value = dup.Check(doc(text))
	if want > 0.15 {
		t.Fatalf("test text too short: %.4f", want)
	}
	if reason != "" {
		t.Errorf("dup 5-gram %.4f under limit dropped: %s %s", want, reason, value)
	}
	dup.DupNGrams[5] = 0.05
	if reason, value = dup.Check(doc(text)); reason != RepDupNGram(5) || value != fmtRatio(want) {
		t.Errorf("dup 5-gram: got %q %q, want %q %s", reason, value, RepDupNGram(5), fmtRatio(want))
	}
	// A run of one repeated word: overlapping repeats count once (scan jumps).
	text = strings.Repeat("la ", 20) // 20 words; 5-grams from 1 on repeat
	if reason, _ = dup.Check(doc(text)); reason != RepDupNGram(5) {
		t.Errorf("repeated word: got %q", reason)
	}
}

func TestC4(t *testing.T) {
	c := DefaultC4()
	good := []string{
		"The first sentence is here.", "A second one follows it!", "Is this the third one?",
		`He said "the fourth."`, "And the fifth sentence ends here.",
	}
	check := func(name string, lines []string, wantText, wantReason string) {
		t.Helper()
		d := doc(strings.Join(lines, "\n"))
		text, removed, reason, _ := c.Modify(d)
		if reason != wantReason {
			t.Errorf("%s: reason %q, want %q", name, reason, wantReason)
			return
		}
		if reason == "" {
			if text != wantText {
				t.Errorf("%s: text\n%q\nwant\n%q", name, text, wantText)
			}
			if removed != len(d.Text)-len(text) {
				t.Errorf("%s: removed %d, want %d", name, removed, len(d.Text)-len(text))
			}
		}
	}
	all := strings.Join(good, "\n")
	check("five sentences", good, all, "")
	check("four sentences", good[:4], "", C4TooFewSentences)
	check("line filters", append([]string{
		"Menu", "Home | About | Contact", "no terminal punctuation here",
		"Too short.", "Ends with an ellipsis...", "Please enable JavaScript to view this page.",
		"This site uses cookies to improve things.", "Read our Privacy Policy for details.",
		"  Surrounding space is stripped.  ", "word " + strings.Repeat("x", 1001) + " is too long.",
	}, good...), "Surrounding space is stripped.\n"+all, "")
	check("citations", append([]string{"Paris is the capital of France.[1][23] It is big.[citation needed] Indeed[edit] it is."}, good...),
		"Paris is the capital of France. It is big. Indeed it is.\n"+all, "")
	check("lorem ipsum", append([]string{"Lorem ipsum dolor sit amet."}, good...), "", C4LoremIpsum)
	check("curly bracket", append([]string{"function f() { return 1; } is code."}, good...), "", C4CurlyBracket)
	check("curly bracket in removed line does not count", append([]string{"{ menu"}, good...), all, "")
	c.BadWords = []string{"badword", "two words"}
	check("bad word", append([]string{"This has a BadWord in it."}, good...), "", C4BadWord)
	check("bad phrase", append([]string{"These are two words."}, good...), "", C4BadWord)
	check("no bad word", append([]string{"Badwords plural is not the word."}, good...), "Badwords plural is not the word.\n"+all, "")
}

func TestFineWebBoundaries(t *testing.T) {
	f := DefaultFineWebQuality()
	long := func(i int, end string) string {
		return "this is a line that is longer than thirty characters number " + string(rune('a'+i)) + end
	}
	mk := func(n, punct int) string {
		var ls []string
		for i := 0; i < n; i++ {
			end := ""
			if i < punct {
				end = "."
			}
			ls = append(ls, long(i, end))
		}
		return strings.Join(ls, "\n")
	}
	short := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteString("\nshort line " + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ".")
		}
		return b.String()
	}
	runCases(t, f, []ruleCase{
		{"empty", "", FineWebEmpty, "0"},
		{"blank lines only", "\n  \n\t\n", FineWebEmpty, "0"},
		{"12/100 punctuated pass", mk(100, 12), "", ""},
		{"11/100 punctuated", mk(100, 11), FineWebLinePunct, "0.1100"},
		{"67% short pass", mk(33, 33) + short(67), "", ""},
		{"68% short", mk(32, 32) + short(68), FineWebShortLines, "0.6800"},
	})
	f.MaxShortLines = -1
	dupText := mk(20, 20) + "\n" + long(0, ".")
	frac := float64(len(long(0, "."))) / float64(len(dupText)-strings.Count(dupText, "\n"))
	runCases(t, f, []ruleCase{{"one duplicated line", dupText, FineWebCharDupRatio, fmtRatio(frac)}})
	f.MaxCharDupRatio, f.MinLinePunct = -1, -1
	// newline ratio: 30 newlines / 100 words passes, 31 does not.
	list := func(nl int) string {
		var b strings.Builder
		for i := 0; i < 100; i++ {
			b.WriteString("word. ")
			if i < nl {
				b.WriteString("\n")
			}
		}
		return b.String()
	}
	runCases(t, f, []ruleCase{
		{"0.3 newlines/word pass", list(30), "", ""},
		{"0.31 newlines/word", list(31), FineWebNewlineRatio, "0.3100"},
	})
}

func TestLanguageAndURL(t *testing.T) {
	l := &Language{Languages: []string{"en", "de"}, MinScore: 0.65}
	for _, c := range []struct {
		lang   string
		score  float64
		reason string
	}{{"en", 0.9, ""}, {"de", 0.65, ""}, {"en", 0.64, LangLowScore}, {"fr", 0.99, LangNotListed}, {"", 0, LangNotListed}} {
		if r, _ := l.Check(&shards.Document{Lang: c.lang, LangScore: c.score}); r != c.reason {
			t.Errorf("lang %s %.2f: %q, want %q", c.lang, c.score, r, c.reason)
		}
	}
	u := &URLBlock{Domains: []string{"spam.com"}, Substrings: []string{"casino"}}
	for _, c := range []struct{ url, reason string }{
		{"http://spam.com/x", URLBlockedHost}, {"https://www.SPAM.com:8080/", URLBlockedHost},
		{"http://notspam.com/", ""}, {"http://spam.com.example.org/", ""},
		{"http://example.org/Casino-Royale", URLBlockedMatch}, {"", ""}, {"::not a url", ""},
	} {
		if r, _ := u.Check(&shards.Document{URL: c.url}); r != c.reason {
			t.Errorf("url %q: %q, want %q", c.url, r, c.reason)
		}
	}
}

// TestDegenerateDocuments runs every rule on empty and malformed documents:
// none may panic, and every reason must be declared.
func TestDegenerateDocuments(t *testing.T) {
	texts := []string{"", " ", "\n", "\n\n\n\n", "\r\n\r\n", "#", "...", "…", "\xff\xfe\xfd", "a",
		strings.Repeat("x", 5000), strings.Repeat("\n", 1000), strings.Repeat("- \n", 100),
		"{", "[1]", "[", "]", "\u0000\u0000", strings.Repeat("é", 2000), "日本語のテキスト。"}
	for _, r := range allRules() {
		for _, text := range texts {
			reason, _ := r.Check(&shards.Document{Text: text, URL: text})
			if reason != "" && !slices.Contains(r.Reasons(), reason) {
				t.Errorf("%s on %q: undeclared reason %q", r.Name(), text, reason)
			}
		}
	}
	g := DefaultGopherQuality()
	if r, v := g.Check(doc("")); r != GopherTooFewWords || v != "0" {
		t.Errorf("gopher on empty: %q %q", r, v)
	}
	if r, v := DefaultC4().Check(doc("")); r != C4TooFewSentences || v != "0" {
		t.Errorf("c4 on empty: %q %q", r, v)
	}
	if r, _ := DefaultGopherRepetition().Check(doc("")); r != "" {
		t.Errorf("repetition on empty: %q", r)
	}
}

func TestTokenize(t *testing.T) {
	var tk tokens
	tk.tokenize("Hello, world! (It's) — 2014 ... naïve café\tx|y")
	want := []string{"Hello", "world", "It's", "2014", "naïve", "café", "x|y"}
	if !slices.Equal(tk.Words, want) {
		t.Errorf("words %q, want %q", tk.Words, want)
	}
	if tk.Total != 9 || tk.Alpha != 6 {
		t.Errorf("total %d alpha %d, want 9 and 6", tk.Total, tk.Alpha)
	}
	if n := countTokens(" a  b\nc "); n != 3 {
		t.Errorf("countTokens = %d", n)
	}
}

func TestPipelineRoutesAndRecordsRemoval(t *testing.T) {
	good := "The first sentence is here.\nA second one follows it!\nIs this the third one?\nThe fourth is here.\nAnd the fifth sentence ends here."
	p := Pipeline{Rules: []Rule{DefaultC4(), &GopherQuality{MinWords: 5, MaxWords: -1, MinMeanWordLen: -1, MaxMeanWordLen: -1,
		MaxHashRatio: -1, MaxEllipsisRatio: -1, MaxBulletLines: -1, MaxEllipsisLines: -1, MinAlphaWords: -1, MinStopWords: -1}}}
	d := doc("Menu\n" + good)
	o := p.Apply(d)
	if d.Drop != nil || d.Text != good || o.Removed["c4"] != len("Menu\n") {
		t.Errorf("kept doc: drop %v, text %q, removed %v", d.Drop, d.Text, o.Removed)
	}
	d = doc("Lorem ipsum dolor sit amet.\n" + good)
	if o = p.Apply(d); d.Drop == nil || d.Drop.Reason != C4LoremIpsum || o.Reason != C4LoremIpsum {
		t.Errorf("lorem: %+v", d.Drop)
	}
}

// TestPipelineSharedTokensMatchChecks: the pipeline's shared tokenisation
// gives the same verdicts as each rule's own Check, also after C4 rewrites
// the text.
func TestPipelineSharedTokensMatchChecks(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var texts []string
	for i := 0; i < 200; i++ {
		texts = append(texts, genDoc(r, i%2 == 0))
	}
	texts = append(texts, "", words(60, "la"), strings.Repeat("Menu\n", 50)+words(100, strings.Fields(prose)...)+".")
	rules := []Rule{DefaultGopherRepetition(), DefaultC4(), DefaultGopherQuality(), DefaultFineWebQuality()}
	p := Pipeline{Rules: rules}
	for _, text := range texts {
		// Reference: each rule's own Check on the text as the previous rules left it.
		want := doc(text)
		var wantReason string
		for _, rule := range rules {
			if m, ok := rule.(Modifier); ok {
				nt, _, reason, _ := m.Modify(want)
				if reason == "" {
					want.Text = nt
				}
				wantReason = reason
			} else {
				wantReason, _ = rule.Check(want)
			}
			if wantReason != "" {
				break
			}
		}
		got := doc(text)
		o := p.Apply(got)
		if o.Reason != wantReason || (wantReason == "" && got.Text != want.Text) {
			t.Errorf("pipeline %q, rules %q on %.60q", o.Reason, wantReason, text)
		}
	}
}
