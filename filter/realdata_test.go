package filter

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/smelt-dev/smelt/shards"
)

// The expected values below are recomputed in the test by small,
// independent definitions written from the papers (white-space split,
// regexp splits), not taken from the rules' own output.

func fieldsWith(text string, pred func(rune) bool) (all, match int) {
	for _, w := range strings.Fields(text) {
		all++
		if strings.IndexFunc(w, pred) >= 0 {
			match++
		}
	}
	return all, match
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) }

func TestRealGopherQuality(t *testing.T) {
	docs := crawlDocs(t)
	g := DefaultGopherQuality()
	// A CC listing page of years and counts: under 80 % of words have a letter.
	d := findDoc(t, docs, "advocatesaz.org/tag/antibiotic")
	all, alpha := fieldsWith(d.Text, unicode.IsLetter)
	if reason, value := g.Check(d); reason != GopherTooFewAlphaWords || value != fmtRatio(float64(alpha)/float64(all)) {
		t.Errorf("advocatesaz: %q %q, want %q %s", reason, value, GopherTooFewAlphaWords, fmtRatio(float64(alpha)/float64(all)))
	}
	// A 269-byte blog stub: under 50 words.
	d = findDoc(t, docs, "aborigines-in-australia")
	_, words := fieldsWith(d.Text, isWordRune)
	if reason, value := g.Check(d); reason != GopherTooFewWords || value != fmtInt(words) || words >= 50 {
		t.Errorf("stub: %q %q, want %q %d", reason, value, GopherTooFewWords, words)
	}
	// Russian pages: none of the English stop words.
	for _, url := range []string{"003ms.ru", "nn.ru/?page=blog&blog_id=518109"} {
		if reason, value := g.Check(findDoc(t, docs, url)); reason != GopherTooFewStopWords || value != "0" {
			t.Errorf("%s: %q %q", url, reason, value)
		}
	}
	// A page whose every line ends in "..." (a list of teasers).
	d = findDoc(t, docs, "boardprospects.com")
	if reason, _ := g.Check(d); reason != GopherTooManyEllipsisEnds {
		t.Errorf("boardprospects: %q", reason)
	}
	// Articles that pass.
	for _, url := range []string{"mayoclinic.org", "cdc.gov/pcd", "activecities.com", "911blogger.com"} {
		if reason, value := g.Check(findDoc(t, docs, url)); reason != "" {
			t.Errorf("%s dropped: %s %s", url, reason, value)
		}
	}
	// Edited reference prose passes almost always.
	passRate(t, g, referenceChunks(t, "clean_text/debian_jargon-text_4.4.7_jargon.txt.gz"), 0.90)
	passRate(t, g, referenceChunks(t, "clean_text/tinyshakespeare.txt"), 0.90)
	// WikiText-2 is stored tokenised (" , " and " @-@ " are tokens of their
	// own), so its symbol words push many chunks under the 80 % alpha bar:
	// that is the rule working as published, not a clean-text failure.
}

func passRate(t *testing.T, r Rule, docs []*shards.Document, min float64) {
	t.Helper()
	pass := 0
	reasons := map[string]int{}
	for _, d := range docs {
		if reason, _ := r.Check(d); reason == "" {
			pass++
		} else {
			reasons[reason]++
		}
	}
	if rate := float64(pass) / float64(len(docs)); rate < min {
		t.Errorf("%s passes %.3f of %d reference chunks, want >= %.2f (drops %v)", r.Name(), rate, len(docs), min, reasons)
	}
}

var newlineRuns = regexp.MustCompile("\n+")

func TestRealGopherRepetition(t *testing.T) {
	docs := crawlDocs(t)
	g := DefaultGopherRepetition()
	dupLines := func(text string) (frac, charFrac float64) {
		lines := newlineRuns.Split(text, -1)
		seen := map[string]bool{}
		n, chars := 0, 0
		for _, l := range lines {
			if seen[l] {
				n++
				chars += len(l)
			}
			seen[l] = true
		}
		return float64(n) / float64(len(lines)), float64(chars) / float64(len(text))
	}
	// An Italian corporate page repeating its menu: 42 % duplicate lines.
	d := findDoc(t, docs, "biosmanagement.it")
	frac, _ := dupLines(d.Text)
	if reason, value := g.Check(d); reason != RepDupLineFrac || value != fmtRatio(frac) || frac <= 0.3 {
		t.Errorf("biosmanagement: %q %q, want %s", reason, value, fmtRatio(frac))
	}
	// A forum thread repeating signatures and buttons.
	d = findDoc(t, docs, "forums.nasioc.com")
	frac, charFrac := dupLines(d.Text)
	if reason, value := g.Check(d); reason != RepDupLineCharFrac || value != fmtRatio(charFrac) || frac > 0.3 {
		t.Errorf("nasioc: %q %q, want %s", reason, value, fmtRatio(charFrac))
	}
	for _, url := range []string{"mayoclinic.org", "cdc.gov/pcd", "activecities.com"} {
		if reason, value := g.Check(findDoc(t, docs, url)); reason != "" {
			t.Errorf("%s dropped: %s %s", url, reason, value)
		}
	}
	passRate(t, g, referenceChunks(t, "clean_text/debian_jargon-text_4.4.7_jargon.txt.gz"), 0.90)
}

func TestRealC4(t *testing.T) {
	docs := crawlDocs(t)
	c := DefaultC4()
	// A weather page: navigation and numbers, one real sentence at most.
	if reason, _ := c.Check(findDoc(t, docs, "accuweather.com")); reason != C4TooFewSentences {
		t.Errorf("accuweather: %q", reason)
	}
	keptAny := false
	for _, d := range docs {
		text, removed, reason, _ := c.Modify(d)
		if reason != "" {
			continue
		}
		keptAny = true
		if removed != len(d.Text)-len(text) {
			t.Errorf("%s: removed %d, text shrank by %d", d.URL, removed, len(d.Text)-len(text))
		}
		// Every kept line satisfies C4's line rules.
		for _, line := range strings.Split(text, "\n") {
			lower := strings.ToLower(line)
			if !strings.ContainsAny(line[len(line)-1:], ".?!\"'") || strings.HasSuffix(line, "...") ||
				len(strings.Fields(line)) < 3 || strings.Contains(lower, "javascript") || strings.Contains(line, "{") ||
				strings.Contains(lower, "privacy policy") || strings.Contains(lower, "lorem ipsum") {
				t.Errorf("%s: kept line breaks C4's rules: %q", d.URL, line)
			}
		}
	}
	if !keptAny {
		t.Error("C4 kept no real document")
	}
	// The Mayo Clinic page keeps its prose and loses its menus.
	text, removed, reason, _ := c.Modify(findDoc(t, docs, "mayoclinic.org"))
	if reason != "" || removed == 0 || !strings.Contains(text, "asthma") {
		t.Errorf("mayoclinic: reason %q, removed %d", reason, removed)
	}
}

func TestRealFineWeb(t *testing.T) {
	docs := crawlDocs(t)
	f := DefaultFineWebQuality()
	ratio := func(text string, pred func(string) bool) float64 {
		n, k := 0, 0
		for _, l := range strings.Split(text, "\n") {
			if strings.TrimSpace(l) == "" {
				continue
			}
			n++
			if pred(l) {
				k++
			}
		}
		return float64(k) / float64(n)
	}
	// A wikia file page: menus, almost no line ends a sentence.
	d := findDoc(t, docs, "100-things-to-do")
	want := ratio(d.Text, func(l string) bool { return strings.ContainsAny(l[len(l)-1:], ".'\"!?") })
	if reason, value := f.Check(d); reason != FineWebLinePunct || value != fmtRatio(want) {
		t.Errorf("wikia: %q %q, want %s", reason, value, fmtRatio(want))
	}
	// A radio station page of short headline lines.
	d = findDoc(t, docs, "1005thewolf.iheart.com")
	want = ratio(d.Text, func(l string) bool { return len([]rune(l)) <= 30 })
	if reason, value := f.Check(d); reason != FineWebShortLines || value != fmtRatio(want) {
		t.Errorf("iheart: %q %q, want %s", reason, value, fmtRatio(want))
	}
	for _, url := range []string{"mayoclinic.org", "cdc.gov/pcd", "activecities.com"} {
		if reason, value := f.Check(findDoc(t, docs, url)); reason != "" {
			t.Errorf("%s dropped: %s %s", url, reason, value)
		}
	}
}

// TestRealClassifier trains on clean reference text against Common Crawl
// text from ../shared/data and checks the bar: held-out ROC AUC of
// at least 0.95. (filter/bench/sklearn_compare.py compares it with
// scikit-learn on the same features.)
func TestRealClassifier(t *testing.T) {
	needShared(t)
	var ex []Example
	add := func(docs []*shards.Document, pos bool) {
		for _, d := range docs {
			for i, c := range ChunkText(d.Text, 2000) {
				ex = append(ex, Example{ID: d.ID + "#" + fmtInt(i), Text: c, Positive: pos})
			}
		}
	}
	for _, f := range []string{"clean_text/tinyshakespeare.txt", "clean_text/wikitext-2_valid.txt",
		"clean_text/minbpe_taylorswift_wikipedia.txt", "clean_text/debian_jargon-text_4.4.7_jargon.txt.gz"} {
		text := readText(t, f)
		if len(text) > 300_000 {
			text = text[:300_000] // keeps the test fast under -race; the CLI run in the README uses all of it
		}
		add([]*shards.Document{{ID: f, Text: text}}, true)
	}
	add(crawlDocs(t), false)
	res, err := Train(context.Background(), ex, TrainOptions{Bits: 18})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d examples, %d iterations, held-out %+v", len(ex), res.Iterations, res.Test)
	if res.Test.AUC < 0.95 || res.Test.N-res.Test.Positives < 20 {
		t.Errorf("held-out %+v: want ROC AUC >= 0.95 with at least 20 negatives", res.Test)
	}
}
