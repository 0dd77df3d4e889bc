package fasttext_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/markusmobius/go-trafilatura"
	"github.com/smelt-dev/smelt/ingest"
	"github.com/smelt-dev/smelt/internal/testutil"
)

// page is one go-trafilatura comparison page: its extracted text and the
// language its <html lang> declares ("" when none).
type page struct {
	file, lang, text string
}

// The labelling of ingest's language-id measurement (ingest/langid_test.go
// and the table in ingest/langid.go): the two-letter <html lang>, on pages
// that extract to at least 200 characters.
var rxHTMLLang = regexp.MustCompile(`(?is)<html[^>]*\slang\s*=\s*["']?([a-zA-Z]{2})`)

var (
	pagesOnce sync.Once
	pagesVal  []page
)

// quick says whether to use a fraction of the pages (-short, -race).
func quick() bool { return testing.Short() || raceEnabled }

// comparisonPages extracts the go-trafilatura comparison pages once per
// test binary (all cores), as ingest's language-id measurement does: all
// of them, or the first 250 in quick mode.
func comparisonPages(t testing.TB) []page {
	t.Helper()
	files := testutil.TrafilaturaPages(t, 900)
	pagesOnce.Do(func() {
		all, _ := filepath.Glob(filepath.Join(filepath.Dir(files[0]), "*.html"))
		sort.Strings(all)
		if quick() {
			all = all[:250]
		}
		out := make([]page, len(all))
		var wg sync.WaitGroup
		next := make(chan int)
		for range runtime.GOMAXPROCS(0) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					b, err := os.ReadFile(all[i])
					if err != nil {
						continue
					}
					p := page{file: filepath.Base(all[i])}
					if m := rxHTMLLang.FindSubmatch(b); m != nil {
						p.lang = strings.ToLower(string(m[1]))
					}
					res, err := trafilatura.Extract(bytes.NewReader(b), ingest.ExtractOptions(""))
					if err == nil {
						p.text = res.ContentText
					}
					out[i] = p
				}
			}()
		}
		for i := range all {
			next <- i
		}
		close(next)
		wg.Wait()
		pagesVal = out
	})
	return pagesVal
}

var (
	sharedOnce sync.Once
	sharedVal  []string
	sharedErr  error
)

// sharedTexts are the documents smelt ingests from the shared WET, WARC
// and JSONL samples (the broken samples among them contribute what is
// readable).
func sharedTexts(t testing.TB) []string {
	t.Helper()
	var files []string
	for _, dir := range []string{"wet", "warc", "jsonl"} {
		m, _ := filepath.Glob(filepath.Join(testutil.SharedData(t, dir), "*"))
		for _, f := range m {
			if !strings.Contains(f, ".wat.") {
				files = append(files, f)
			}
		}
	}
	sharedOnce.Do(func() {
		tmp, err := os.MkdirTemp("", "fasttext-corpus-*")
		if err != nil {
			sharedErr = err
			return
		}
		defer os.RemoveAll(tmp)
		if _, sharedErr = ingest.Run(context.Background(), files, filepath.Join(tmp, "out"), ingest.Options{Source: "shared"}); sharedErr != nil {
			return
		}
		for _, d := range testutil.ReadDocs(t, filepath.Join(tmp, "out")) {
			sharedVal = append(sharedVal, d.Text)
		}
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedVal
}

// realTexts is the comparison corpus: every shared-sample document and
// every extracted page as one line (newlines as spaces), then their
// paragraphs of at least 40 bytes, up to limit texts in all.
func realTexts(t testing.TB, limit int) []string {
	t.Helper()
	docs := sharedTexts(t)
	for _, p := range comparisonPages(t) {
		if p.text != "" {
			docs = append(docs, p.text)
		}
	}
	var texts []string
	for _, d := range docs {
		texts = append(texts, oneLine(d))
	}
	for _, d := range docs {
		for _, line := range strings.Split(d, "\n") {
			if len(texts) >= limit {
				return texts
			}
			if len(line) >= 40 {
				texts = append(texts, line)
			}
		}
	}
	return texts
}
