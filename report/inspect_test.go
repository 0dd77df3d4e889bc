package report

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
	"golang.org/x/net/html"
)

func inspectServer(t *testing.T) (*fixture, *Run, *httptest.Server) {
	t.Helper()
	f := getFixture(t)
	run, err := Load(f.Dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewServer(context.Background(), run))
	t.Cleanup(srv.Close)
	return f, run, srv
}

// listing pages through /docs and returns the ids and verdicts shown.
func listing(t *testing.T, base, query string) (ids, verdicts []string) {
	t.Helper()
	next := base + "/docs?" + query
	for pages := 0; next != ""; pages++ {
		if pages > 1000 {
			t.Fatal("more than 1000 pages")
		}
		doc, _ := get(t, next)
		for _, tr := range findAll(one(t, doc, byClass("docs"), "document table"), byTag("tr"))[1:] {
			ids = append(ids, text(one(t, tr, byClass("doclink"), "document link")))
			tds := findAll(tr, byTag("td"))
			verdicts = append(verdicts, strings.TrimSpace(text(tds[3])))
		}
		next = ""
		for _, a := range findAll(doc, byTag("a")) {
			if attr(a, "rel") == "next" {
				next = base + attr(a, "href")
				break
			}
		}
	}
	return ids, verdicts
}

func TestInspectListingsMatchShards(t *testing.T) {
	f, run, srv := inspectServer(t)
	for _, st := range run.Steps {
		for _, set := range []string{"kept", "dropped"} {
			dir := st.Dir
			if set == "dropped" {
				if st.Dropped == nil {
					continue
				}
				dir = filepath.Join(st.Dir, shards.DroppedDir)
			} else if st.Manifest == nil || st.Manifest.Kind == shards.KindTokens {
				continue
			}
			want := testutil.ReadDocs(t, dir)
			ids, verdicts := listing(t, srv.URL, "step="+url.QueryEscape(st.Name)+"&set="+set)
			if len(ids) != len(want) {
				t.Fatalf("%s/%s: listing shows %d documents, the shards hold %d", st.Name, set, len(ids), len(want))
			}
			for i, d := range want {
				if ids[i] != d.ID {
					t.Fatalf("%s/%s row %d: listing shows %s, shards hold %s", st.Name, set, i, ids[i], d.ID)
				}
				if d.Drop != nil && !strings.HasPrefix(verdicts[i], d.Drop.Reason) {
					t.Errorf("%s/%s row %d: verdict %q, want %s", st.Name, set, i, verdicts[i], d.Drop.Reason)
				}
				if d.Drop == nil && verdicts[i] != "kept" {
					t.Errorf("%s/%s row %d: verdict %q, want kept", st.Name, set, i, verdicts[i])
				}
			}
		}
	}
	_ = f
}

func TestInspectDocumentPages(t *testing.T) {
	f, _, srv := inspectServer(t)
	want := testutil.ReadDocs(t, filepath.Join(f.Dir, "ingest-gen"))
	// Rows at the edges of record batches (16 rows) and shards.
	for _, row := range []int{0, 1, 15, 16, 17, 100, len(want) / 2, len(want) - 1} {
		doc, _ := get(t, fmt.Sprintf("%s/doc?step=ingest-gen&set=kept&row=%d", srv.URL, row))
		if id := text(one(t, doc, byID("doc-id"), "#doc-id")); id != want[row].ID {
			t.Errorf("row %d: page shows %s, shards hold %s", row, id, want[row].ID)
		}
		if got := text(one(t, doc, byID("doc-text"), "#doc-text")); got != want[row].Text {
			t.Errorf("row %d (%s): text differs from the shard's", row, want[row].ID)
		}
	}
}

func TestInspectReasonListings(t *testing.T) {
	_, run, srv := inspectServer(t)
	for _, name := range []string{"filter", "dedup"} {
		st := stepNamed(t, run, name)
		n := 0
		for _, reason := range shards.SortedKeys(st.Stats.Dropped) {
			c := st.Stats.Dropped[reason]
			if c.Docs == 0 {
				continue
			}
			n++
			ids, verdicts := listing(t, srv.URL, "step="+name+"&set=dropped&reason="+url.QueryEscape(reason))
			if int64(len(ids)) != c.Docs {
				t.Errorf("%s %s: %d documents listed, stats.json counts %d", name, reason, len(ids), c.Docs)
			}
			for i, v := range verdicts {
				if !strings.HasPrefix(v, reason+" ") {
					t.Errorf("%s %s: %s listed with verdict %q", name, reason, ids[i], v)
				}
			}
		}
		if n == 0 {
			t.Errorf("%s dropped nothing: the fixture does not exercise reason listings", name)
		}
	}
}

func searchHits(t *testing.T, base, q string) ([]string, string) {
	t.Helper()
	doc, _ := get(t, base+"/search?q="+url.QueryEscape(q))
	var ids []string
	for _, a := range findAll(doc, byClass("doclink")) {
		ids = append(ids, text(a))
	}
	return ids, text(one(t, doc, byID("search-summary"), "search summary"))
}

func TestInspectSearch(t *testing.T) {
	f, run, srv := inspectServer(t)
	// The known document is in every document step that kept or dropped it.
	want := 0
	for _, st := range run.Steps {
		for _, dir := range []string{st.Dir, filepath.Join(st.Dir, shards.DroppedDir)} {
			if m, err := shards.ReadManifest(dir); err != nil || m.Kind == shards.KindTokens {
				continue
			}
			for _, d := range testutil.ReadDocs(t, dir) {
				if d.ID == knownID {
					want++
				}
			}
		}
	}
	for _, q := range []string{knownID, knownURL} {
		ids, summary := searchHits(t, srv.URL, q)
		if len(ids) != want {
			t.Errorf("search %s: %d hits (%s), want %d", q, len(ids), summary, want)
		}
		for _, id := range ids {
			if id != knownID {
				t.Errorf("search %s found %s", q, id)
			}
		}
	}
	ids, summary := searchHits(t, srv.URL, "known-page")
	if len(ids) != want || !strings.Contains(summary, "contains") {
		t.Errorf("substring search: %d hits (%s), want %d", len(ids), summary, want)
	}
	if ids, _ := searchHits(t, srv.URL, "no-such-document-anywhere"); len(ids) != 0 {
		t.Errorf("search for nothing found %q", ids)
	}
	if f.HasWeb {
		ids, _ := searchHits(t, srv.URL, f.WebDocID)
		if len(ids) == 0 {
			t.Errorf("search for ingested page %s found nothing", f.WebDocID)
		}
	}
}

func TestInspectHostileDocument(t *testing.T) {
	_, _, srv := inspectServer(t)
	ids, _ := searchHits(t, srv.URL, scriptID)
	if len(ids) == 0 {
		t.Fatal("the <script> document is not found")
	}
	doc, _ := get(t, srv.URL+"/search?q="+url.QueryEscape(scriptID))
	href := attr(one(t, doc, byClass("doclink"), "link"), "href")
	page, resp := get(t, srv.URL+href)
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q does not forbid scripts", csp)
	}
	if n := findAll(page, func(n *html.Node) bool {
		return n.Data == "script" || attr(n, "onerror") != "" || (n.Data == "img" && attr(n, "src") == "x")
	}); len(n) > 0 {
		t.Errorf("the document's markup became %d elements of the page", len(n))
	}
	if got := text(one(t, page, byID("doc-text"), "#doc-text")); !strings.HasPrefix(got, scriptText) {
		t.Errorf("text shown is %.120q, want it to start with the raw markup", got)
	}
	if !strings.Contains(text(page), `<script>alert('meta')</script>`) {
		t.Error("the document's meta is not shown as text")
	}
	for _, a := range findAll(page, byTag("a")) {
		if strings.Contains(attr(a, "href"), "<") {
			t.Errorf("unescaped link %q", attr(a, "href"))
		}
	}
}

func TestInspectDuplicateSideBySide(t *testing.T) {
	f, _, srv := inspectServer(t)
	kept := map[string]*shards.Document{}
	for _, d := range testutil.ReadDocs(t, filepath.Join(f.Dir, "dedup")) {
		kept[d.ID] = d
	}
	dropped := testutil.ReadDocs(t, filepath.Join(f.Dir, "dedup", shards.DroppedDir))
	if len(dropped) == 0 {
		t.Fatal("dedup dropped nothing")
	}
	for row, d := range dropped {
		page, _ := get(t, fmt.Sprintf("%s/doc?step=dedup&set=dropped&row=%d", srv.URL, row))
		orig := kept[d.Drop.DupOf]
		if orig == nil {
			t.Fatalf("%s duplicates %q, not among dedup's kept documents", d.ID, d.Drop.DupOf)
		}
		if got := text(one(t, page, byID("orig-text"), "#orig-text")); got != orig.Text {
			t.Errorf("%s: the document it duplicates is not shown beside it", d.ID)
		}
		if got := text(one(t, page, byID("drop-reason"), "#drop-reason")); got != d.Drop.Reason {
			t.Errorf("%s: reason %q, want %q", d.ID, got, d.Drop.Reason)
		}
	}
}

func TestInspectReadOnlyAndBadRequests(t *testing.T) {
	_, _, srv := inspectServer(t)
	for _, c := range []struct {
		method, path string
		code         int
	}{
		{"POST", "/", http.StatusMethodNotAllowed},
		{"PUT", "/docs?step=filter", http.StatusMethodNotAllowed},
		{"DELETE", "/doc?step=filter&row=0", http.StatusMethodNotAllowed},
		{"GET", "/nothing-here", http.StatusNotFound},
		{"GET", "/docs?step=no-such-step", http.StatusNotFound},
		{"GET", "/docs?step=filter&page=-1", http.StatusBadRequest},
		{"GET", "/docs?step=filter&page=999999", http.StatusNotFound},
		{"GET", "/doc?step=filter&row=abc", http.StatusBadRequest},
		{"GET", "/doc?step=filter&row=99999999", http.StatusNotFound},
		{"GET", "/docs?step=tokenize", http.StatusNotFound},
		{"HEAD", "/", http.StatusOK},
		{"GET", "/report", http.StatusOK},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("%s %s: %s, want %d", c.method, c.path, resp.Status, c.code)
		}
	}
}

// bigDir writes n small generated documents into dir.
func bigDir(t testing.TB, dir string, n int) {
	t.Helper()
	docs := make([]*shards.Document, n)
	for i := range docs {
		docs[i] = &shards.Document{ID: fmt.Sprintf("big-%07d", i), Source: "big", URL: fmt.Sprintf("https://big.example/%d", i), Lang: "en",
			Text: fmt.Sprintf("Document number %d of a large run. %s", i, strings.Repeat("Some filler words. ", i%7))}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := shards.NewDocWriter(dir, shards.DocWriterOptions{TargetBytes: 1 << 20})
	for _, d := range docs {
		if err := w.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := shards.WriteManifest(dir, &shards.Manifest{Kind: shards.KindDocuments, Stage: "ingest", Shards: w.Shards(), Totals: shards.SumShards(w.Shards())}); err != nil {
		t.Fatal(err)
	}
}

// TestInspectDeepPage reads a page deep inside a larger stage directory
// (several shards of 1024-row batches) and checks it against the shards.
func TestInspectDeepPage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "big")
	bigDir(t, dir, 30000)
	run, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Steps[0].Manifest.Shards) < 2 {
		t.Fatalf("fixture has %d shards, want several", len(run.Steps[0].Manifest.Shards))
	}
	srv := httptest.NewServer(NewServer(context.Background(), run))
	defer srv.Close()
	page := int64(437) // rows 21850..21899
	doc, _ := get(t, fmt.Sprintf("%s/docs?step=big&set=kept&page=%d", srv.URL, page))
	links := findAll(doc, byClass("doclink"))
	if len(links) != PageSize {
		t.Fatalf("page %d shows %d documents, want %d", page, len(links), PageSize)
	}
	for i, a := range links {
		if want := fmt.Sprintf("big-%07d", page*PageSize+int64(i)); text(a) != want {
			t.Fatalf("page %d row %d: %s, want %s", page, i, text(a), want)
		}
	}
	ids, _ := searchHits(t, srv.URL, "https://big.example/29999")
	if len(ids) != 1 || ids[0] != "big-0029999" {
		t.Errorf("url search in the large directory found %q", ids)
	}
}

// TestInspectHostileURL checks that a javascript: url never becomes a
// live link.
func TestInspectHostileURL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hostile")
	writeDocDir(t, dir, []*shards.Document{
		{ID: "js-url", Source: "web", URL: "javascript:alert(document.cookie)", Text: "click me"},
		{ID: "data-url", Source: "web", URL: "data:text/html,<script>alert(1)</script>", Text: "or me"},
	}, 0)
	run, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewServer(context.Background(), run))
	defer srv.Close()
	for row := 0; row < 2; row++ {
		page, _ := get(t, fmt.Sprintf("%s/doc?step=hostile&row=%d", srv.URL, row))
		for _, a := range findAll(page, byTag("a")) {
			h := strings.ToLower(attr(a, "href"))
			if strings.HasPrefix(h, "javascript:") || strings.HasPrefix(h, "data:") {
				t.Errorf("row %d: live link %q", row, attr(a, "href"))
			}
		}
	}
}

// TestInspectCorruptShard: a damaged shard gives an error page naming the
// file, and the server goes on serving.
func TestInspectCorruptShard(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "big")
	bigDir(t, dir, 30000)
	m, err := shards.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Shards) < 2 {
		t.Fatalf("%d shards, want several", len(m.Shards))
	}
	last := filepath.Join(dir, m.Shards[len(m.Shards)-1].Name)
	data, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(last, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	run, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewServer(context.Background(), run))
	defer srv.Close()
	resp, err := http.Get(fmt.Sprintf("%s/doc?step=big&row=%d", srv.URL, m.Totals.Rows-1))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), last) {
		t.Errorf("damaged shard: %s %q, want a server error naming %s", resp.Status, body, last)
	}
	get(t, srv.URL+"/doc?step=big&row=0") // the first shard still reads
	if _, err := Load(filepath.Join(t.TempDir(), "x"), Options{}); err == nil {
		t.Error("no error for a missing directory")
	}
}
