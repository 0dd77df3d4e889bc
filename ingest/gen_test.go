package ingest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// warcRec is one generated WARC record.
type warcRec struct {
	typ, id, uri, ctype string
	block               []byte
}

func (w warcRec) bytes(version string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "WARC/%s\r\nWARC-Type: %s\r\nWARC-Record-ID: <%s>\r\n", version, w.typ, w.id)
	if w.uri != "" {
		fmt.Fprintf(&b, "WARC-Target-URI: %s\r\n", w.uri)
	}
	fmt.Fprintf(&b, "WARC-Date: 2024-05-06T07:08:09Z\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", w.ctype, len(w.block))
	b.Write(w.block)
	b.WriteString("\r\n\r\n")
	return b.Bytes()
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// httpResp builds an HTTP response message.
func httpResp(status int, headers string, body []byte) []byte {
	h := fmt.Sprintf("HTTP/1.1 %d X\r\n%s\r\n", status, strings.ReplaceAll(strings.TrimSpace(headers), "\n", "\r\n"))
	if strings.TrimSpace(headers) != "" {
		h += "\r\n"
	}
	return append([]byte(h), body...)
}

const testPage = `<!DOCTYPE html><html lang="en"><head><title>Ingest test page %d</title></head><body>
<nav><a href="/">Home</a> <a href="/about">About</a></nav>
<article><h1>A page about rivers number %d</h1>
<p>Rivers carry water from high ground to the sea, shaping valleys and plains as they go. Over thousands of years a river can cut a canyon through solid rock.</p>
<p>People have always settled along rivers, because rivers bring water for crops, fish for food and an easy road for trade between towns.</p>
<p>Today many rivers are dammed to make electricity, which changes how sediment moves and how fish can swim upstream to breed each spring.</p>
</article><footer>Copyright</footer></body></html>`

// genWARC builds the standard generated test records: warcinfo, then for
// each page a request and a response, plus one image response.
func genWARC(pages int) []warcRec {
	recs := []warcRec{{typ: "warcinfo", id: "urn:uuid:info", ctype: "application/warc-fields", block: []byte("software: smelt-test\r\n")}}
	for i := 0; i < pages; i++ {
		uri := fmt.Sprintf("https://example.org/rivers/%d", i)
		recs = append(recs,
			warcRec{typ: "request", id: fmt.Sprintf("urn:uuid:req-%d", i), uri: uri, ctype: "application/http; msgtype=request", block: []byte("GET / HTTP/1.1\r\nHost: example.org\r\n\r\n")},
			warcRec{typ: "response", id: fmt.Sprintf("urn:uuid:resp-%d", i), uri: uri, ctype: "application/http; msgtype=response",
				block: httpResp(200, "Content-Type: text/html; charset=utf-8", []byte(fmt.Sprintf(testPage, i, i)))})
	}
	recs = append(recs, warcRec{typ: "response", id: "urn:uuid:img", uri: "https://example.org/a.png", ctype: "application/http; msgtype=response",
		block: httpResp(200, "Content-Type: image/png", []byte("\x89PNG\r\n\x1a\nnot really"))})
	return recs
}

// writeFile writes b to dir/name and returns the path.
func writeTestFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// comparisonPages returns up to n real pages shipped in the go-trafilatura
// module (test-files/comparison), sorted by name.
func comparisonPages(t testing.TB, n int) []string {
	t.Helper()
	dir := trafilaturaDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "test-files", "comparison", "*.html"))
	if err != nil || len(files) == 0 {
		t.Skipf("go-trafilatura test pages not found under %s", dir)
	}
	if n > 0 && len(files) > n {
		files = files[:n]
	}
	return files
}

// trafilaturaDir is the go-trafilatura module directory (go list -m).
func trafilaturaDir(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/markusmobius/go-trafilatura").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Skipf("cannot locate the go-trafilatura module: %v", err)
	}
	return strings.TrimSpace(string(out))
}
