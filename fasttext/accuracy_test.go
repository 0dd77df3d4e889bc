package fasttext_test

import (
	"github.com/smelt-dev/smelt/internal/testutil"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/smelt-dev/smelt/fasttext"
	"github.com/smelt-dev/smelt/ingest"
)

// labelledPages are the go-trafilatura pages that declare a two-letter
// <html lang> and extract to at least 200 characters: the set on which
// ingest measured whatlanggo's 0.953.
func labelledPages(t testing.TB) []page {
	var out []page
	for _, p := range comparisonPages(t) {
		if p.lang != "" && len(p.text) >= 200 {
			out = append(out, p)
		}
	}
	return out
}

func head(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// TestLID176Accuracy measures lid.176 against <html lang> next to
// whatlanggo (ingest's default), with documents per second on one core.
func TestLID176Accuracy(t *testing.T) {
	testutil.Thorough(t) // a minute or more on a busy machine: a measurement, run by .ci/run
	if quick() {
		t.Skip("a measurement on all 866 labelled pages: run without -short and -race")
	}
	r := ref(t)
	lid, err := fasttext.LoadLangID(r.lidPath())
	if err != nil {
		t.Fatal(err)
	}
	pages := labelledPages(t)
	if len(pages) < 800 {
		t.Fatalf("only %d labelled pages", len(pages))
	}
	type method struct {
		name   string
		detect func(string) (string, float64)
	}
	methods := []method{
		{"whatlanggo (ingest default, first 2 KiB)", ingest.DetectLanguage},
		{"lid.176.ftz, whole text", lid.DetectLanguage},
		{"lid.176.ftz, first 2 KiB", func(s string) (string, float64) { return lid.DetectLanguage(head(s, 2048)) }},
	}
	acc := map[string]float64{}
	for _, m := range methods {
		ok := 0
		start, cpu := time.Now(), cpuSeconds()
		for _, p := range pages {
			if lang, _ := m.detect(p.text); lang == p.lang {
				ok++
			}
		}
		el, cpuEl := time.Since(start).Seconds(), cpuSeconds()-cpu
		acc[m.name] = float64(ok) / float64(len(pages))
		t.Logf("%-42s accuracy %.3f on %d pages, %6.0f docs per CPU-second (%6.0f docs/s wall, one goroutine)", m.name, acc[m.name], len(pages),
			float64(len(pages))/cpuEl, float64(len(pages))/el)
	}
	if a := acc["lid.176.ftz, whole text"]; a < 0.93 {
		t.Errorf("lid.176 accuracy %.3f", a)
	}
}
