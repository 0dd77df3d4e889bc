package report

import (
	"context"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/smelt-dev/smelt/filter"
	"github.com/smelt-dev/smelt/ingest"
	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
	"golang.org/x/net/html"
)

// sharedData is the project's real-data samples (../shared/data from the
// repository root); tests that need them skip when it is absent.
func sharedData(t *testing.T) string {
	dir := filepath.Join("..", "..", "shared", "data")
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST.md")); err != nil {
		t.Skipf("real-data samples not found at %s (a plain clone has none): %v", dir, err)
	}
	return dir
}

// TestRealCrawl ingests real Common Crawl and crawl WARCs, filters them
// with the default rules, and checks the report and inspect against the
// shards: every drop reason has an example dropped for it, every
// document of every step is listed, and a real URL is found.
func TestRealCrawl(t *testing.T) {
	data := sharedData(t)
	ctx := context.Background()
	dir := t.TempDir()
	files := []string{
		filepath.Join(data, "warc", "resiliparse_CC-MAIN-2020-34_warcfile.warc.gz"),
		filepath.Join(data, "warc", "dolma_sample-0000.warc.gz"),
		filepath.Join(data, "warc", "dolma_sample-0001.warc.gz"),
		filepath.Join(data, "wet", "jh_CC-MAIN-2016-50_filter_test_1.wet.gz"),
	}
	if _, err := ingest.Run(ctx, files, filepath.Join(dir, "ingest-cc"), ingest.Options{Source: "cc", Workers: 2}); err != nil {
		t.Fatal(err)
	}
	pipe, err := filter.DefaultConfig().Pipeline()
	if err != nil {
		t.Fatal(err)
	}
	st := &filter.Stage{Pipeline: pipe}
	if _, err := st.Run(ctx, filter.RunOptions{Inputs: []string{filepath.Join(dir, "ingest-cc")}, Out: filepath.Join(dir, "filter-cc"), Workers: 2, Settings: "default"}); err != nil {
		t.Fatal(err)
	}
	run, doc, _ := renderReport(t, dir, Options{})
	if len(run.Steps) != 2 {
		t.Fatalf("%d steps, want ingest-cc and filter-cc", len(run.Steps))
	}
	drops := findAll(doc, byClass("drop"))
	if len(drops) < 3 {
		t.Fatalf("only %d drop reasons on real crawl data", len(drops))
	}
	for _, tr := range drops {
		step := stepNamed(t, run, attr(tr, "data-step"))
		reason, id := attr(tr, "data-reason"), attr(tr, "data-example")
		if step.Dropped == nil {
			if id != "" {
				t.Errorf("%s %s: example %q from a step that stores no dropped documents", step.Name, reason, id)
			}
			continue
		}
		ok := false
		for _, d := range testutil.ReadDocs(t, filepath.Join(step.Dir, shards.DroppedDir)) {
			ok = ok || (d.ID == id && d.Drop.Reason == reason)
		}
		if !ok {
			t.Errorf("%s %s: example %q is not dropped for it", step.Name, reason, id)
		}
	}
	one(t, doc, byID("chart-langs"), "language chart")

	srv := httptest.NewServer(NewServer(ctx, run))
	defer srv.Close()
	var someURL string
	for _, s := range []string{"ingest-cc", "filter-cc"} {
		want := testutil.ReadDocs(t, filepath.Join(dir, s))
		ids, _ := listing(t, srv.URL, "step="+s+"&set=kept")
		if len(ids) != len(want) {
			t.Fatalf("%s: %d listed, %d stored", s, len(ids), len(want))
		}
		for i := range want {
			if ids[i] != want[i].ID {
				t.Fatalf("%s row %d: %s listed, %s stored", s, i, ids[i], want[i].ID)
			}
			if want[i].URL != "" {
				someURL = want[i].URL
			}
		}
	}
	ids, _ := searchHits(t, srv.URL, someURL)
	if len(ids) == 0 {
		t.Errorf("search for the real url %s found nothing", someURL)
	}
	// Every real document page parses and has no element from the page's text.
	for _, d := range testutil.ReadDocs(t, filepath.Join(dir, "filter-cc", shards.DroppedDir)) {
		page, _ := get(t, srv.URL+"/search?q="+url.QueryEscape(d.ID))
		if n := findAll(page, func(n *html.Node) bool { return n.Data == "script" }); len(n) > 0 {
			t.Fatalf("search page for %s has script elements", d.ID)
		}
	}
}
