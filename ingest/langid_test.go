package ingest

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/markusmobius/go-trafilatura"
)

var rxHTMLLang = regexp.MustCompile(`(?is)<html[^>]*\slang\s*=\s*["']?([a-zA-Z]{2})`)

// Language id on real pages shipped in go-trafilatura, labelled by their
// <html lang> attribute (a noisy label: some pages declare the wrong one).
func TestDetectLanguageOnRealPages(t *testing.T) {
	pages := comparisonPages(t, 60)
	total, ok := 0, 0
	langs := map[string]int{}
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m := rxHTMLLang.FindSubmatch(b)
		if m == nil {
			continue
		}
		res, err := trafilatura.Extract(bytes.NewReader(b), ExtractOptions(""))
		if err != nil || len(res.ContentText) < 200 {
			continue
		}
		want := strings.ToLower(string(m[1]))
		got, score := DetectLanguage(res.ContentText)
		if score < 0 || score > 1 {
			t.Fatalf("score %v out of range", score)
		}
		total++
		langs[want]++
		if got == want {
			ok++
		}
	}
	if total < 40 || len(langs) < 2 {
		t.Fatalf("only %d labelled pages (%v)", total, langs)
	}
	if acc := float64(ok) / float64(total); acc < 0.9 {
		t.Fatalf("accuracy %.3f on %d pages %v", acc, total, langs)
	}
}

func TestDetectLanguageEdgeCases(t *testing.T) {
	if l, s := DetectLanguage(""); l != "" || s != 0 {
		t.Errorf("empty: %q %v", l, s)
	}
	if l, s := DetectLanguage("12345 !!! ---"); l != "" || s != 0 {
		t.Errorf("no letters: %q %v", l, s)
	}
	// A long text is cut at a rune boundary, never mid-character.
	long := strings.Repeat("日本語の文章です。", 2000)
	if l, _ := DetectLanguage(long); l != "ja" {
		t.Errorf("long Japanese: %q", l)
	}
}

func TestDetectLanguageShared(t *testing.T) {
	for file, want := range map[string]string{
		"tokenizer/cs336_german.txt":     "de",
		"clean_text/tinyshakespeare.txt": "en",
		"tokenizer/cs336_address.txt":    "en",
	} {
		b, err := os.ReadFile(dataPath(t, file))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := DetectLanguage(string(b)); got != want {
			t.Errorf("%s: %q, want %q", file, got, want)
		}
	}
	ta := readAllRecords(t, dataPath(t, "wet/jh_CC-MAIN-2016-50_fragment3_ru.wet.gz"), FormatAuto, ReaderOptions{})
	ru := 0
	for _, d := range ta.docs {
		if d.Lang == "ru" {
			ru++
		}
	}
	if ru < 3 {
		t.Errorf("only %d of %d Russian pages detected as ru", ru, len(ta.docs))
	}
}
