package report

import (
	"context"
	"flag"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the browser tests' screenshots to testdata/ (the README's pictures)")

func screenshotPath(t *testing.T, name string) string {
	if *updateScreenshots {
		return filepath.Join("testdata", name)
	}
	return filepath.Join(t.TempDir(), name)
}

// TestBrowser drives headless Chromium through the report and smelt
// inspect like a user: pages load without console errors, charts render,
// a search finds a known document, a dropped document shows its reason, a
// duplicate shows the document it duplicates, and a document containing
// <script> renders as text.
func TestBrowser(t *testing.T) {
	b := startBrowser(t)
	f := getFixture(t)
	run, err := Load(f.Dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewServer(context.Background(), run))
	defer srv.Close()
	noErrors := func(page string) {
		t.Helper()
		if errs := b.takeErrors(); len(errs) > 0 {
			t.Errorf("%s: console errors: %q", page, errs)
		}
	}

	t.Run("console errors are seen", func(t *testing.T) {
		b.t = t
		// The collector must see errors, or "no errors" below means nothing.
		b.navigate(srv.URL + "/no-such-page")
		if errs := b.takeErrors(); len(errs) == 0 {
			t.Error("a page that fails to load (404) reported no console error")
		}
	})

	t.Run("report file is self-contained", func(t *testing.T) {
		b.t = t
		path := filepath.Join(t.TempDir(), "report.html")
		fh, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := Write(context.Background(), fh, run); err != nil {
			t.Fatal(err)
		}
		fh.Close()
		b.takeRequests()
		u := (&url.URL{Scheme: "file", Path: path}).String()
		b.navigate(u)
		noErrors("report")
		for _, r := range b.takeRequests() {
			if r != u {
				t.Errorf("the report requested %s: it must load nothing", r)
			}
		}
		// Every chart is an SVG with marks in it.
		for _, id := range []string{"funnel", "drops", "quality-filter", "langs", "clusters-dedup", "tokens", "loss-train"} {
			var n int
			b.eval(`document.querySelectorAll("svg#chart-`+id+` rect, svg#chart-`+id+` polyline, svg#chart-`+id+` circle").length`, &n)
			if n == 0 {
				t.Errorf("chart %s: no SVG marks rendered", id)
			}
			var w float64
			b.eval(`(() => { const e = document.getElementById("chart-`+id+`"); return e ? e.getBoundingClientRect().width : 0 })()`, &w)
			if w < 100 {
				t.Errorf("chart %s: rendered %v px wide", id, w)
			}
		}
		var epochsRows int
		b.eval(`document.querySelectorAll("#plan-table tr").length`, &epochsRows)
		if want := 2 + btoi(f.HasWeb); epochsRows < want {
			t.Errorf("epochs table has %d rows, want at least %d", epochsRows, want)
		}
		b.screenshot(screenshotPath(t, "screenshot-report.png"), 1000, 1400)
	})

	t.Run("every kind of page loads cleanly", func(t *testing.T) {
		b.t = t
		for _, u := range []string{"/report", "/docs?step=filter&set=kept", "/docs?step=filter&set=dropped&page=1",
			"/doc?step=dedup&set=dropped&row=0", "/search?q=gen-0", "/search?q=nothing-at-all"} {
			b.navigate(srv.URL + u)
			noErrors(u)
			var svgs int
			b.eval(`document.querySelectorAll("svg").length`, &svgs)
			if u == "/report" && svgs < 5 {
				t.Errorf("/report: %d charts", svgs)
			}
		}
	})

	t.Run("search finds a known document", func(t *testing.T) {
		b.t = t
		b.navigate(srv.URL + "/")
		noErrors("index")
		var n int
		b.eval(`document.querySelectorAll("#steps tr").length`, &n)
		if n != len(run.Steps)+1 {
			t.Errorf("index lists %d rows, want %d steps", n-1, len(run.Steps))
		}
		for len(b.loaded) > 0 {
			<-b.loaded
		}
		b.eval(`(() => { document.getElementById("q").value = "`+knownURL+`"; document.querySelector("form.search").submit(); return true })()`, nil)
		b.waitLoad()
		noErrors("search")
		var ids []string
		b.eval(`[...document.querySelectorAll("a.doclink")].map(a => a.textContent)`, &ids)
		if len(ids) == 0 || ids[0] != knownID {
			t.Fatalf("search for %s found %q, want %s first", knownURL, ids, knownID)
		}
		b.clickAndWait("a.doclink")
		noErrors("doc")
		var id, text string
		b.eval(`document.getElementById("doc-id").textContent`, &id)
		b.eval(`document.getElementById("doc-text").textContent`, &text)
		want := docByID(t, genDocs(), knownID)
		if id != knownID || text != want.Text {
			t.Errorf("document page shows id %q and %d bytes of text, want %q and the %d bytes generated", id, len(text), knownID, len(want.Text))
		}
	})

	t.Run("dropped document shows its reason", func(t *testing.T) {
		b.t = t
		st := stepNamed(t, run, "filter")
		reason := topReason(st.Stats)
		b.navigate(srv.URL + "/")
		b.clickText("a.reason", reason+" ")
		noErrors("listing")
		b.screenshot(screenshotPath(t, "screenshot-inspect.png"), 1000, 900)
		b.clickAndWait("a.doclink")
		noErrors("dropped doc")
		var got, value string
		b.eval(`document.getElementById("drop-reason").textContent`, &got)
		b.eval(`document.getElementById("drop-value").textContent`, &value)
		if got != reason || value == "" {
			t.Errorf("dropped document shows reason %q value %q, want %q with a value", got, value, reason)
		}
	})

	t.Run("duplicate beside the document it duplicates", func(t *testing.T) {
		b.t = t
		b.navigate(srv.URL + "/docs?step=dedup&set=dropped")
		b.clickAndWait("a.doclink")
		noErrors("duplicate")
		var dup, orig string
		b.eval(`document.getElementById("doc-text").textContent`, &dup)
		b.eval(`(document.getElementById("orig-text") || {}).textContent || ""`, &orig)
		if dup == "" || orig == "" {
			t.Fatalf("duplicate page: dropped text %d bytes, original %d bytes; want both shown", len(dup), len(orig))
		}
	})

	t.Run("script renders as text", func(t *testing.T) {
		b.t = t
		b.navigate(srv.URL + "/search?q=" + url.QueryEscape(scriptID))
		b.clickAndWait("a.doclink")
		noErrors("hostile doc")
		var scripts int
		var pwned any
		var title, text string
		b.eval(`document.querySelectorAll("script, img[onerror]").length`, &scripts)
		b.eval(`window.__pwned === undefined ? null : window.__pwned`, &pwned)
		b.eval(`document.title`, &title)
		b.eval(`document.getElementById("doc-text").textContent`, &text)
		if scripts != 0 || pwned != nil || strings.Contains(title, "pwned") {
			t.Errorf("hostile document ran: %d script/img elements, __pwned=%v, title %q", scripts, pwned, title)
		}
		if !strings.Contains(text, `<script>document.title="pwned"`) {
			t.Errorf("the script tag is not shown as text: %.200q", text)
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func docByID(t *testing.T, docs []*shards.Document, id string) *shards.Document {
	t.Helper()
	for _, d := range docs {
		if d.ID == id {
			return d
		}
	}
	t.Fatalf("no document %s", id)
	return nil
}

func stepNamed(t *testing.T, run *Run, name string) *Step {
	t.Helper()
	for _, s := range run.Steps {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no step %s", name)
	return nil
}

// topReason is the drop reason with the most documents.
func topReason(st *shards.Stats) string {
	best := ""
	for _, k := range shards.SortedKeys(st.Dropped) {
		if best == "" || st.Dropped[k].Docs > st.Dropped[best].Docs {
			best = k
		}
	}
	return best
}
