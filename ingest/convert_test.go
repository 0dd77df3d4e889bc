package ingest

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/andybalholm/brotli"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
)

const jaPage = `<html><head>%s<title>川の話</title></head><body><article>
<p>川は高い山から海へ水を運び、長い年月をかけて谷や平野を形づくります。人々は昔から川のそばに住み、水や魚、そして町と町を結ぶ道として川を利用してきました。</p>
<p>今日では多くの川にダムが造られ、電気を生み出していますが、土砂の流れや魚の移動が変わってしまうこともあります。</p>
<p>川の水は農業にも欠かせません。田んぼに水を引くために、昔の人々は用水路を掘り、季節ごとに水の量を調整してきました。</p>
</article></body></html>`

func mustEncode(t *testing.T, s string, f func(string) (string, error)) []byte {
	t.Helper()
	out, err := f(s)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(out)
}

func httpRecord(status int, headers string, body []byte) *Record {
	return &Record{File: "mem.warc", Key: "urn:uuid:k", URL: "https://example.jp/river", Date: "2024-01-02T03:04:05Z",
		Type: "response", Kind: PayloadHTTP, ContentType: "application/http; msgtype=response", Body: httpResp(status, headers, body)}
}

func TestConvertCharsets(t *testing.T) {
	sjis := mustEncode(t, fmt.Sprintf(jaPage, ""), japanese.ShiftJIS.NewEncoder().String)
	eucMeta := mustEncode(t, fmt.Sprintf(jaPage, `<meta http-equiv="Content-Type" content="text/html; charset=EUC-JP">`), japanese.EUCJP.NewEncoder().String)
	cases := []struct {
		name, headers string
		body          []byte
		charset       string
	}{
		{"header-sjis", "Content-Type: text/html; charset=Shift_JIS", sjis, "shift_jis"},
		{"meta-eucjp", "Content-Type: text/html", eucMeta, "euc-jp"},
		{"undeclared-sjis", "Content-Type: text/html", sjis, "shift_jis"},
		{"lying-header-utf8", "Content-Type: text/html; charset=utf-8", sjis, "shift_jis"},
		{"utf8", "Content-Type: text/html", []byte(fmt.Sprintf(jaPage, `<meta charset="utf-8">`)), "utf-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc, skip, err := Convert(httpRecord(200, c.headers, c.body), "t")
			if err != nil || skip != "" {
				t.Fatalf("err %v skip %q", err, skip)
			}
			if !strings.Contains(doc.Text, "川は高い山から海へ水を運び") || strings.Contains(doc.Text, "\uFFFD") {
				t.Fatalf("text %q", doc.Text)
			}
			if doc.Lang != "ja" {
				t.Errorf("lang %q", doc.Lang)
			}
			var meta map[string]any
			if err := json.Unmarshal([]byte(doc.Meta), &meta); err != nil {
				t.Fatal(err)
			}
			if meta["charset"] != c.charset || meta["http_status"] != float64(200) || meta["title"] != "川の話" {
				t.Errorf("meta %v", meta)
			}
		})
	}
}

func TestConvertHTTPEncodings(t *testing.T) {
	page := []byte(fmt.Sprintf(testPage, 1, 1))
	var defl bytes.Buffer
	fw, _ := flate.NewWriter(&defl, 5)
	fw.Write(page)
	fw.Close()
	var br bytes.Buffer
	bw := brotli.NewWriter(&br)
	bw.Write(page)
	bw.Close()
	chunk := func(b []byte) []byte {
		var out bytes.Buffer
		for len(b) > 0 {
			n := min(len(b), 300)
			fmt.Fprintf(&out, "%x\r\n%s\r\n", n, b[:n])
			b = b[n:]
		}
		out.WriteString("0\r\n\r\n")
		return out.Bytes()
	}
	ok := []struct {
		name, headers string
		body          []byte
	}{
		{"gzip", "Content-Type: text/html\nContent-Encoding: gzip", gzipBytes(t, page)},
		{"gzip-already-decoded", "Content-Type: text/html\nContent-Encoding: gzip", page},
		{"deflate-raw", "Content-Type: text/html\nContent-Encoding: deflate", defl.Bytes()},
		{"br", "Content-Type: text/html\nContent-Encoding: br", br.Bytes()},
		{"chunked", "Content-Type: text/html\nTransfer-Encoding: chunked", chunk(page)},
		{"chunked-gzip", "Content-Type: text/html\nTransfer-Encoding: chunked\nContent-Encoding: gzip", chunk(gzipBytes(t, page))},
		{"chunked-header-but-decoded", "Content-Type: text/html\nTransfer-Encoding: chunked", page},
		{"no-content-type", "", page},
		{"lf-only-headers", "Content-Type: text/html", page},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			rec := httpRecord(200, c.headers, c.body)
			if c.name == "lf-only-headers" {
				rec.Body = append([]byte("HTTP/1.0 200 OK\nContent-Type: text/html\n\n"), page...)
			}
			doc, skip, err := Convert(rec, "t")
			if err != nil || skip != "" {
				t.Fatalf("err %v skip %q", err, skip)
			}
			if !strings.Contains(doc.Text, "Rivers carry water") {
				t.Fatalf("text %q", doc.Text)
			}
		})
	}
	skips := []struct {
		name    string
		rec     *Record
		skip    string
		errKind string
	}{
		{"404", httpRecord(404, "Content-Type: text/html", page), SkipHTTPStatus, ""},
		{"redirect", httpRecord(301, "Location: /x", nil), SkipHTTPStatus, ""},
		{"image", httpRecord(200, "Content-Type: image/jpeg", []byte("\xff\xd8\xff\xe0")), SkipNonHTML, ""},
		{"pdf", httpRecord(200, "Content-Type: application/pdf", []byte("%PDF-1.4")), SkipNonHTML, ""},
		{"compress", httpRecord(200, "Content-Type: text/html\nContent-Encoding: compress", page), SkipHTTPEncoding, ""},
		{"empty-page", httpRecord(200, "Content-Type: text/html", []byte("<html><body><script>var x = 1;</script></body></html>")), SkipExtractEmpty, ""},
		{"not-http", &Record{File: "f", Key: "k", Kind: PayloadHTTP, Body: []byte("<html>oops")}, "", ErrHTTPInvalid},
		{"bad-gzip", httpRecord(200, "Content-Type: text/html\nContent-Encoding: gzip", append([]byte{0x1f, 0x8b, 8, 0}, bytes.Repeat([]byte{0xee}, 40)...)), "", ErrHTTPBody},
		{"bad-chunk", httpRecord(200, "Content-Type: text/html\nTransfer-Encoding: chunked", []byte("5\r\nab")), "", ""},
		{"gzip-bomb", func() *Record {
			r := httpRecord(200, "Content-Type: text/html\nContent-Encoding: gzip", gzipBytes(t, bytes.Repeat([]byte("<p>a</p>"), 1<<17)))
			r.MaxBytes = 1 << 16
			return r
		}(), "", ErrRecordTooLarge},
		{"reader-skip", &Record{Skip: SkipWARCRevisit}, SkipWARCRevisit, ""},
	}
	for _, c := range skips {
		t.Run(c.name, func(t *testing.T) {
			doc, skip, err := Convert(c.rec, "t")
			if c.name == "bad-chunk" {
				// A body cut mid-chunk keeps what arrived.
				if err != nil || doc == nil || doc.Text != "ab" {
					t.Fatalf("doc %v skip %q err %v", doc, skip, err)
				}
				return
			}
			if c.errKind != "" {
				re, ok := IsRecordError(err)
				if !ok || re.Kind != c.errKind || doc != nil || !strings.Contains(err.Error(), c.rec.File) {
					t.Fatalf("got doc %v skip %q err %v; want %s", doc, skip, err, c.errKind)
				}
				return
			}
			if skip != c.skip || err != nil || doc != nil {
				t.Fatalf("got doc %v skip %q err %v; want skip %s", doc, skip, err, c.skip)
			}
		})
	}
}

func TestConvertTextAndHTMLFiles(t *testing.T) {
	dir := t.TempDir()
	latin := []byte(mustEncode(t, "Le fleuve porte l'eau des montagnes jusqu'à la mer. Été comme hiver, il coule à travers la forêt et les prés.", charmap.ISO8859_1.NewEncoder().String))
	p := writeTestFile(t, dir, "notes.txt", latin)
	ta := readAllRecords(t, p, FormatAuto, ReaderOptions{})
	if len(ta.docs) != 1 || !strings.Contains(ta.docs[0].Text, "Été comme hiver") || ta.docs[0].ID != "test/notes.txt" || ta.docs[0].Lang != "fr" {
		t.Fatalf("docs %+v errs %v", ta.docs, ta.errs)
	}
	p = writeTestFile(t, dir, "page.html", []byte(fmt.Sprintf(testPage, 3, 3)))
	ta = readAllRecords(t, p, FormatAuto, ReaderOptions{})
	if len(ta.docs) != 1 || !strings.Contains(ta.docs[0].Text, "Rivers carry water") || ta.docs[0].ID != "test/page.html" {
		t.Fatalf("docs %+v errs %v", ta.docs, ta.errs)
	}
	p = writeTestFile(t, dir, "page.html.gz", gzipBytes(t, []byte(fmt.Sprintf(testPage, 4, 4))))
	if ta = readAllRecords(t, p, FormatAuto, ReaderOptions{}); len(ta.docs) != 1 {
		t.Fatalf("gz html: %+v %v", ta.docs, ta.errs)
	}
	p = writeTestFile(t, dir, "empty.txt", nil)
	if ta = readAllRecords(t, p, FormatAuto, ReaderOptions{}); len(ta.errs) != 1 || ta.errs[0].Kind != ErrEmptyFile {
		t.Fatalf("empty: %v", ta.errs)
	}
	p = writeTestFile(t, dir, "big.txt", bytes.Repeat([]byte("word "), 1000))
	if ta = readAllRecords(t, p, FormatAuto, ReaderOptions{MaxRecordBytes: 100}); len(ta.errs) != 1 || ta.errs[0].Kind != ErrRecordTooLarge {
		t.Fatalf("big: %v", ta.errs)
	}
	// WET text must be UTF-8.
	rec := &Record{File: "x.wet", Key: "k", Kind: PayloadText, Body: []byte("caf\xe9")}
	if _, _, err := Convert(rec, "t"); err == nil {
		t.Fatal("invalid UTF-8 accepted")
	} else if re, _ := IsRecordError(err); re == nil || re.Kind != ErrUTF8Invalid {
		t.Fatalf("invalid UTF-8: %v", err)
	}
}

// Convert is deterministic and safe for concurrent use: many goroutines
// converting the same records produce identical documents.
func TestConvertConcurrentDeterministic(t *testing.T) {
	pages, goroutines := comparisonPages(t, 6), 3
	if os.Getenv("SMELT_THOROUGH") != "" {
		pages, goroutines = comparisonPages(t, 12), 4
	}
	var recs []*Record
	for _, p := range pages {
		r, err := Open(p, FormatHTML, ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rec, err := r.Next()
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	render := func(i int) string {
		doc, skip, err := Convert(recs[i], "tp")
		if err != nil || doc == nil {
			return fmt.Sprint(skip, err)
		}
		return fmt.Sprintf("%s|%s|%s|%v|%s|%s", doc.ID, doc.URL, doc.Lang, doc.LangScore, doc.Text, doc.Meta)
	}
	want := make([]string, len(recs))
	for i := range recs {
		want[i] = render(i)
	}
	var wg sync.WaitGroup
	errs := make(chan string, goroutines*len(recs))
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := len(recs) - 1; i >= 0; i-- {
				if got := render(i); got != want[i] {
					errs <- fmt.Sprintf("page %d differs", i)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	// Meta is a JSON object with sorted keys.
	doc, _, _ := Convert(recs[0], "tp")
	var keys []string
	dec := json.NewDecoder(strings.NewReader(doc.Meta))
	dec.Token()
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var v any
		dec.Decode(&v)
	}
	for i := 1; i < len(keys); i++ {
		if keys[i-1] >= keys[i] {
			t.Fatalf("meta keys not sorted: %v", keys)
		}
	}
}
