package ingest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
)

func concatWARC(recs []warcRec, version string) []byte {
	var b bytes.Buffer
	for _, r := range recs {
		b.Write(r.bytes(version))
	}
	return b.Bytes()
}

// checkGenerated asserts what the standard generated WARC turns into.
func checkGenerated(t *testing.T, ta *tally, pages int) {
	t.Helper()
	if ta.fatal != nil || len(ta.errs) != 0 {
		t.Fatalf("fatal %v, errors %v", ta.fatal, ta.errs)
	}
	if ta.types["response"] != pages+1 || ta.types["request"] != pages || ta.types["warcinfo"] != 1 {
		t.Fatalf("record types %v", ta.types)
	}
	if ta.skips[SkipWARCRequest] != pages || ta.skips[SkipWARCInfo] != 1 || ta.skips[SkipNonHTML] != 1 {
		t.Fatalf("skips %v", ta.skips)
	}
	if len(ta.docs) != pages {
		t.Fatalf("%d docs, want %d", len(ta.docs), pages)
	}
	for i, d := range ta.docs {
		if want := "test/urn:uuid:resp-" + strconv.Itoa(i); d.ID != want {
			t.Errorf("doc %d id %q, want %q", i, d.ID, want)
		}
		if !strings.Contains(d.Text, "Rivers carry water") || strings.Contains(d.Text, "Copyright") {
			t.Errorf("doc %d text %q", i, d.Text)
		}
		if d.Lang != "en" || d.Date != "2024-05-06T07:08:09Z" {
			t.Errorf("doc %d lang %q date %q", i, d.Lang, d.Date)
		}
	}
}

func TestWARCPlainWholeGzipPerRecordGzipZstd(t *testing.T) {
	dir := t.TempDir()
	recs := genWARC(5)
	plain := concatWARC(recs, "1.0")
	var perRec []byte
	var offsets []int64
	for _, r := range recs {
		offsets = append(offsets, int64(len(perRec)))
		perRec = append(perRec, gzipBytes(t, r.bytes("1.1"))...)
	}
	enc, _ := zstd.NewWriter(nil)
	files := map[string][]byte{
		"plain.warc":      plain,
		"whole.warc.gz":   gzipBytes(t, plain),
		"per.warc.gz":     perRec,
		"frame.warc.zst":  enc.EncodeAll(plain, nil),
		"noext.bin":       perRec,
		"sample.warc.txt": plain, // cc_net names a WET sample .warc.txt
	}
	for name, b := range files {
		t.Run(name, func(t *testing.T) {
			p := writeTestFile(t, dir, name, b)
			if f, err := DetectFormat(p); err != nil || f != FormatWARC {
				t.Fatalf("DetectFormat = %v, %v", f, err)
			}
			checkGenerated(t, readAllRecords(t, p, FormatAuto, ReaderOptions{}), 5)
		})
	}
	// Offsets: per-record gzip gives each record its member's offset.
	r, err := Open(writeTestFile(t, dir, "off.warc.gz", perRec), FormatWARC, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := 0; ; i++ {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Offset != offsets[i] {
			t.Errorf("record %d offset %d, want %d", i, rec.Offset, offsets[i])
		}
	}
}

func TestWARCCorruptMemberResyncs(t *testing.T) {
	recs := genWARC(6)
	var file []byte
	var offsets []int64
	for _, r := range recs {
		offsets = append(offsets, int64(len(file)))
		file = append(file, gzipBytes(t, r.bytes("1.0"))...)
	}
	// Corrupt the deflate data of the 4th member (response 1).
	bad := 4
	for i := offsets[bad] + 30; i < offsets[bad]+60; i++ {
		file[i] ^= 0x5a
	}
	p := writeTestFile(t, t.TempDir(), "corrupt.warc.gz", file)
	ta := readAllRecords(t, p, FormatAuto, ReaderOptions{})
	if ta.fatal != nil {
		t.Fatal(ta.fatal)
	}
	if len(ta.errs) != 1 || ta.errs[0].Kind != ErrGzipCorrupt || ta.errs[0].Offset != offsets[bad] {
		t.Fatalf("errors %v, want one %s at offset %d", ta.errs, ErrGzipCorrupt, offsets[bad])
	}
	if !strings.Contains(ta.errs[0].Error(), "corrupt.warc.gz") {
		t.Errorf("error does not name the file: %v", ta.errs[0])
	}
	// Every other record survives: 6 pages, one lost.
	if len(ta.docs) != 5 || ta.types["request"] != 6 {
		t.Fatalf("docs %d types %v", len(ta.docs), ta.types)
	}
}

func TestWARCTruncatedGarbageTooLargeBadHeader(t *testing.T) {
	dir := t.TempDir()
	recs := genWARC(3)
	plain := concatWARC(recs, "1.0")

	t.Run("truncated", func(t *testing.T) {
		p := writeTestFile(t, dir, "trunc.warc", plain[:len(plain)-200])
		ta := readAllRecords(t, p, FormatWARC, ReaderOptions{})
		if len(ta.errs) != 1 || ta.errs[0].Kind != ErrWARCTruncated {
			t.Fatalf("errors %v", ta.errs)
		}
		// The last record (the image) is cut; all three pages survive.
		if len(ta.docs) != 3 {
			t.Fatalf("docs %d", len(ta.docs))
		}
		last := concatWARC(recs[:len(recs)-1], "1.0")
		if ta.errs[0].Offset != int64(len(last)) {
			t.Errorf("truncated at offset %d, want %d", ta.errs[0].Offset, len(last))
		}
	})
	t.Run("truncated-gzip", func(t *testing.T) {
		var file []byte
		for _, r := range recs {
			file = append(file, gzipBytes(t, r.bytes("1.0"))...)
		}
		p := writeTestFile(t, dir, "trunc.warc.gz", file[:len(file)-20])
		ta := readAllRecords(t, p, FormatWARC, ReaderOptions{})
		if len(ta.errs) != 1 || (ta.errs[0].Kind != ErrWARCTruncated && ta.errs[0].Kind != ErrGzipTruncated) || len(ta.docs) != 3 {
			t.Fatalf("errors %v docs %d", ta.errs, len(ta.docs))
		}
	})
	t.Run("garbage", func(t *testing.T) {
		junk := []byte("this is not a WARC record\r\nnor is this\r\n\r\n")
		b := append(append(concatWARC(recs[:3], "1.0"), junk...), concatWARC(recs[3:], "1.0")...)
		p := writeTestFile(t, dir, "garbage.warc", b)
		ta := readAllRecords(t, p, FormatWARC, ReaderOptions{})
		if len(ta.errs) != 1 || ta.errs[0].Kind != ErrWARCGarbage || ta.errs[0].Offset != int64(len(concatWARC(recs[:3], "1.0"))) {
			t.Fatalf("errors %v", ta.errs)
		}
		if len(ta.docs) != 3 {
			t.Fatalf("docs %d", len(ta.docs))
		}
	})
	t.Run("too-large", func(t *testing.T) {
		p := writeTestFile(t, dir, "big.warc", plain)
		// Pages are ~1 KiB; the limit lets small records through.
		ta := readAllRecords(t, p, FormatWARC, ReaderOptions{MaxRecordBytes: 600})
		if ta.byKind[ErrRecordTooLarge] != 3 || len(ta.docs) != 0 || ta.types["request"] != 3 {
			t.Fatalf("errors %v types %v", ta.byKind, ta.types)
		}
	})
	t.Run("bad-content-length", func(t *testing.T) {
		b := bytes.Replace(plain, []byte("Content-Length: "), []byte("Content-Length: x"), 1)
		p := writeTestFile(t, dir, "badlen.warc", b)
		ta := readAllRecords(t, p, FormatWARC, ReaderOptions{})
		if ta.byKind[ErrWARCBadHeader] != 1 || len(ta.docs) != 3 {
			t.Fatalf("errors %v docs %d", ta.errs, len(ta.docs))
		}
	})
	t.Run("enormous-header", func(t *testing.T) {
		var hdr bytes.Buffer
		hdr.WriteString("WARC/1.0\r\nWARC-Type: response\r\n")
		for i := 0; i < 20; i++ {
			hdr.WriteString("X-Junk: " + strings.Repeat("j", 60<<10) + "\r\n")
		}
		hdr.WriteString("Content-Length: 0\r\n\r\n\r\n\r\n")
		long := "WARC/1.0\r\nX-Long: " + strings.Repeat("l", 100<<10) + "\r\nContent-Length: 0\r\n\r\n\r\n\r\n"
		b := append(append(append(concatWARC(recs[:2], "1.0"), hdr.Bytes()...), long...), concatWARC(recs[2:], "1.0")...)
		p := writeTestFile(t, dir, "hdr.warc", b)
		ta := readAllRecords(t, p, FormatWARC, ReaderOptions{})
		if ta.byKind[ErrWARCBadHeader] != 2 || len(ta.errs) != 2 || len(ta.docs) != 3 {
			t.Fatalf("errors %v docs %d", ta.errs, len(ta.docs))
		}
	})
	t.Run("empty", func(t *testing.T) {
		for _, b := range [][]byte{nil, gzipBytes(t, nil)} {
			p := writeTestFile(t, dir, "empty.warc.gz", b)
			ta := readAllRecords(t, p, FormatWARC, ReaderOptions{})
			if len(ta.errs) != 1 || ta.errs[0].Kind != ErrEmptyFile {
				t.Fatalf("errors %v", ta.errs)
			}
		}
	})
	t.Run("no-warcinfo", func(t *testing.T) {
		p := writeTestFile(t, dir, "frag.warc", concatWARC(recs[1:], "1.0"))
		ta := readAllRecords(t, p, FormatWARC, ReaderOptions{})
		if len(ta.errs) != 1 || ta.errs[0].Kind != ErrWARCNoWARCInfo || len(ta.docs) != 3 {
			t.Fatalf("errors %v docs %d", ta.errs, len(ta.docs))
		}
	})
}

func TestWARCOldHeaderLine(t *testing.T) {
	// WARC/0.17-0.18 drafts put length, type, uri, date, id and type on the
	// version line.
	page := httpResp(200, "Content-Type: text/html", []byte(strings.ReplaceAll(testPage, "%d", "7")))
	b := []byte("WARC/0.18 " + strconv.Itoa(len(page)) + " response http://old.example/ 20080101000000 <urn:old:1> application/http\r\n\r\n")
	b = append(append(b, page...), "\r\n\r\n"...)
	p := writeTestFile(t, t.TempDir(), "old.warc", b)
	ta := readAllRecords(t, p, FormatWARC, ReaderOptions{})
	if len(ta.docs) != 1 || ta.byKind[ErrWARCNoWARCInfo] != 1 || len(ta.errs) != 1 {
		t.Fatalf("docs %d errors %v", len(ta.docs), ta.errs)
	}
	d := ta.docs[0]
	if d.URL != "http://old.example/" || d.ID != "test/urn:old:1" || d.Date != "2008-01-01T00:00:00Z" {
		t.Fatalf("doc %+v", d)
	}
}

// Ground truth from issue 2, on the real samples in ../shared/data.
func TestSharedGroundTruth(t *testing.T) {
	t.Run("dolma-22-responses", func(t *testing.T) {
		ta := readAllRecords(t, dataPath(t, "warc/dolma_sample-0000.warc.gz"), FormatAuto, ReaderOptions{})
		if ta.types["response"] != 22 || len(ta.errs) != 0 || ta.fatal != nil {
			t.Fatalf("types %v errors %v fatal %v", ta.types, ta.errs, ta.fatal)
		}
		checkAccounted(t, ta, 22)
		en := 0
		for _, d := range ta.docs {
			if d.Lang == "en" {
				en++
			}
		}
		if en < len(ta.docs)*9/10 {
			t.Errorf("only %d of %d English pages detected as en", en, len(ta.docs))
		}
	})
	t.Run("cc-2020-34-16-responses", func(t *testing.T) {
		ta := readAllRecords(t, dataPath(t, "warc/resiliparse_CC-MAIN-2020-34_warcfile.warc.gz"), FormatAuto, ReaderOptions{})
		if ta.types["response"] != 16 || len(ta.errs) != 0 || ta.fatal != nil {
			t.Fatalf("types %v errors %v", ta.types, ta.errs)
		}
		checkAccounted(t, ta, 16)
	})
	t.Run("clueweb-ja-29-responses", func(t *testing.T) {
		ta := readAllRecords(t, dataPath(t, "warc/resiliparse_clueweb09-ja_quirk.warc.gz"), FormatAuto, ReaderOptions{})
		if ta.types["response"] != 29 || len(ta.errs) != 0 || ta.fatal != nil {
			t.Fatalf("types %v errors %v", ta.types, ta.errs)
		}
		checkAccounted(t, ta, 29)
		if len(ta.docs) < 25 {
			t.Fatalf("only %d documents from 29 Japanese pages", len(ta.docs))
		}
		for _, d := range ta.docs {
			if !utf8.ValidString(d.Text) {
				t.Fatalf("%s: invalid UTF-8", d.ID)
			}
			ja, bad := 0, strings.Count(d.Text, "\uFFFD")
			for _, r := range d.Text {
				if unicode.In(r, unicode.Hiragana, unicode.Katakana, unicode.Han) {
					ja++
				}
			}
			if ja < 20 || bad > ja/100 {
				t.Errorf("%s: %d Japanese characters, %d replacement characters: %.80q", d.ID, ja, bad, d.Text)
			}
			if d.Lang != "ja" {
				t.Errorf("%s: lang %q", d.ID, d.Lang)
			}
			// The malformed WARC-Date is kept as given.
			if d.Date != "2008-10-294T05:21:46-0700" {
				t.Errorf("%s: date %q", d.ID, d.Date)
			}
		}
		// Real words from the shop's pages come out readable.
		all := ""
		for _, d := range ta.docs {
			all += d.Text
		}
		for _, w := range []string{"新作入荷", "人気ランキング", "財布"} {
			if !strings.Contains(all, w) {
				t.Errorf("text lacks %q", w)
			}
		}
	})
	t.Run("wet-25-conversions", func(t *testing.T) {
		ta := readAllRecords(t, dataPath(t, "wet/jh_CC-MAIN-2016-50_filter_test_1.wet.gz"), FormatAuto, ReaderOptions{})
		if ta.types["conversion"] != 25 || len(ta.docs) != 25 || len(ta.errs) != 0 {
			t.Fatalf("types %v docs %d errors %v", ta.types, len(ta.docs), ta.errs)
		}
	})
	t.Run("wet-15-then-truncated", func(t *testing.T) {
		p := dataPath(t, "wet/jh_appended_zip_fragment_unexpected_eof.wet.gz")
		r, err := Open(p, FormatAuto, ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		conv := 0
		var errs []*RecordError
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if re, ok := IsRecordError(err); ok {
				errs = append(errs, re)
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(errs) > 0 {
				t.Fatalf("record after the truncation error")
			}
			if rec.Type == "conversion" {
				conv++
			}
		}
		if conv != 15 || len(errs) != 1 || errs[0].Kind != ErrWARCTruncated {
			t.Fatalf("%d conversions, errors %v", conv, errs)
		}
	})
	t.Run("wet-fragment-no-warcinfo", func(t *testing.T) {
		ta := readAllRecords(t, dataPath(t, "wet/jh_CC-MAIN-2016-50_fragment2_no_header.wet.gz"), FormatAuto, ReaderOptions{})
		// The fragment starts mid-record (garbage), holds one complete
		// conversion and a second one cut off at the end of the file.
		if ta.types["warcinfo"] != 0 || ta.byKind[ErrWARCNoWARCInfo] != 1 {
			t.Fatalf("types %v errors %v", ta.types, ta.errs)
		}
		if ta.types["conversion"]+ta.byKind[ErrWARCTruncated] != 2 || len(ta.docs) != 1 {
			t.Fatalf("types %v errors %v docs %d", ta.types, ta.errs, len(ta.docs))
		}
	})
	t.Run("clipped-one-truncated-response", func(t *testing.T) {
		ta := readAllRecords(t, dataPath(t, "warc/resiliparse_clipped.warc.gz"), FormatAuto, ReaderOptions{})
		if len(ta.errs) != 1 || ta.errs[0].Kind != ErrWARCTruncated || ta.errs[0].Offset != 0 || ta.recs != 0 {
			t.Fatalf("records %d errors %v", ta.recs, ta.errs)
		}
	})
	t.Run("iana-chunked", func(t *testing.T) {
		p := dataPath(t, "warc/warcio_example-iana.org-chunked.warc")
		r, err := Open(p, FormatAuto, ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if rec.Type != "response" {
				continue
			}
			resp, err := parseHTTP(rec.Body)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(resp.header["transfer-encoding"], "chunked") {
				t.Fatalf("sample is not chunked: %v", resp.header)
			}
			body, err := decodeBody(resp.header, resp.body, DefaultMaxRecordBytes)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.HasPrefix(resp.body, []byte("<")) || !bytes.HasPrefix(bytes.TrimSpace(body), []byte("<!doctype html>")) ||
				!bytes.HasSuffix(bytes.TrimSpace(body), []byte("</html>")) {
				t.Fatalf("chunked body not decoded: starts %q ends %q", body[:20], body[len(body)-20:])
			}
			doc, skip, err := Convert(rec, "iana")
			if err != nil || skip != "" || !strings.Contains(doc.Text, "Root Zone") {
				t.Fatalf("Convert: %v %q %+v", err, skip, doc)
			}
		}
	})
}

// checkAccounted asserts every response record became a document or a
// named skip.
func checkAccounted(t *testing.T, ta *tally, responses int) {
	t.Helper()
	n := len(ta.docs)
	for _, k := range []string{SkipNonHTML, SkipHTTPStatus, SkipHTTPEncoding, SkipExtractEmpty, SkipExtractFailed} {
		n += ta.skips[k]
	}
	if n != responses || len(ta.docs) == 0 {
		t.Fatalf("%d docs + content skips %v != %d responses", len(ta.docs), ta.skips, responses)
	}
}

func TestDetectFormat(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct {
		body []byte
		want Format
	}{
		"a.warc.gz":    {gzipBytes(t, []byte("WARC/1.0\r\n")), FormatWARC},
		"a.wet.gz":     {gzipBytes(t, []byte("WARC/1.0\r\n")), FormatWET},
		"x.jsonl.zst":  {nil, FormatJSONL},
		"x.json.gz":    {nil, FormatJSONL},
		"x.parquet":    {nil, FormatParquet},
		"p.HTML":       {[]byte("<html>"), FormatHTML},
		"t.txt":        {[]byte("hello"), FormatText},
		"blob":         {gzipBytes(t, []byte(`{"text":"x"}`)), FormatJSONL},
		"blob2":        {[]byte("WARC/1.0\r\nWARC-Type: conversion\r\n"), FormatWET},
		"page":         {[]byte("<!DOCTYPE html><html>"), FormatHTML},
		"notes":        {[]byte("just words"), FormatText},
		"wet.warc.txt": {[]byte("WARC/1.0\r\nWARC-Type: conversion\r\n"), FormatWET},
	}
	for name, c := range cases {
		p := writeTestFile(t, dir, name, c.body)
		got, err := DetectFormat(p)
		if err != nil || got != c.want {
			t.Errorf("DetectFormat(%s) = %v, %v; want %v", name, got, err, c.want)
		}
	}
	if _, err := DetectFormat(dir + "/missing"); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Error("ParseFormat accepted xml")
	}
}

// Common Crawl's own WET for the whirlwind capture is a reference for our
// WARC-to-text: most lines we extract appear in CC's text of the same page.
func TestWhirlwindAgainstCommonCrawlWET(t *testing.T) {
	var ours, theirs string
	r, err := Open(dataPath(t, "warc/cc_whirlwind.warc.gz"), FormatAuto, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for rec, err := range Records(r) {
		if err != nil {
			t.Fatal(err)
		}
		if doc, _, err := Convert(rec, "cc"); err == nil && doc != nil {
			ours = doc.Text
		}
	}
	ta := readAllRecords(t, dataPath(t, "wet/cc_whirlwind.warc.wet.gz"), FormatAuto, ReaderOptions{})
	if len(ta.docs) != 1 || ours == "" {
		t.Fatalf("wet docs %d, ours %d bytes", len(ta.docs), len(ours))
	}
	theirs = ta.docs[0].Text
	// Words, not lines: CC lays tables out differently.
	vocab := map[string]bool{}
	for _, w := range strings.Fields(theirs) {
		vocab[w] = true
	}
	words, found := 0, 0
	for _, w := range strings.Fields(ours) {
		words++
		if vocab[w] {
			found++
		}
	}
	if words < 200 || found*100 < words*90 {
		t.Fatalf("only %d of our %d words appear in Common Crawl's WET text", found, words)
	}
	// And we keep the paragraph structure: one line per block.
	if lines := strings.Count(ours, "\n") + 1; lines < 20 {
		t.Fatalf("extracted text has %d lines", lines)
	}
	t.Logf("%d of %d extracted words appear in CC's WET (%d vs %d bytes)", found, words, len(ours), len(theirs))
}
