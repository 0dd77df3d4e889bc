package ingest

// Fault injection on the real samples in ../shared/data (issue 19): each
// test damages a real file the way the attacks did and checks that nothing
// is lost uncounted and nothing damaged is let in.

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
)

// gzipMembers splits a multi-member gzip file into its members.
func gzipMembers(t testing.TB, data []byte) [][]byte {
	t.Helper()
	var out [][]byte
	br := bytes.NewReader(data)
	for br.Len() > 0 {
		start := len(data) - br.Len()
		zr, err := gzip.NewReader(br) // a bytes.Reader is a ByteReader: nothing is read ahead
		if err != nil {
			t.Fatalf("member at %d: %v", start, err)
		}
		zr.Multistream(false)
		if _, err := io.Copy(io.Discard, zr); err != nil {
			t.Fatalf("member at %d: %v", start, err)
		}
		out = append(out, data[start:len(data)-br.Len()])
	}
	return out
}

func gunzip(t testing.TB, data []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readShared(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(testutil.SharedData(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type convResult struct {
	doc  *shards.Document
	skip string
	err  error
}

// readCached is readAllRecords with Convert's results cached by record
// body: a record whose bytes did not change converts as before, so only
// the damaged records need go-trafilatura (40 damaged files read in a
// fraction of the time).
func readCached(t *testing.T, path string, cache map[string]convResult) *tally {
	t.Helper()
	r, err := Open(path, FormatAuto, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := &tally{types: map[string]int{}, skips: map[string]int{}, byKind: map[string]int{}}
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			re, ok := IsRecordError(err)
			if !ok {
				out.fatal = err
				return out
			}
			out.errs = append(out.errs, re)
			out.byKind[re.Kind]++
			continue
		}
		out.recs++
		out.types[rec.Type]++
		k := rec.Key + "\x00" + rec.URL + "\x00" + rec.Skip + "\x00" + string(rec.Body)
		c, ok := cache[k]
		if !ok {
			c.doc, c.skip, c.err = Convert(rec, "test")
			cache[k] = c
		}
		switch {
		case c.err != nil:
			re, _ := IsRecordError(c.err)
			out.errs = append(out.errs, re)
			out.byKind[re.Kind]++
		case c.skip != "":
			out.skips[c.skip]++
		default:
			out.docs = append(out.docs, c.doc)
		}
	}
}

// docTexts maps a tally's document ids to their texts.
func docTexts(ta *tally) map[string]string {
	m := map[string]string{}
	for _, d := range ta.docs {
		m[d.ID] = d.Text
	}
	return m
}

// recordErrs counts a tally's errors that stand for a record (not the
// incidents between records).
func recordErrs(ta *tally) int {
	n := 0
	for _, e := range ta.errs {
		if !IsIncident(e.Kind) {
			n++
		}
	}
	return n
}

// checkNoDamage fails when a document is not one of the undamaged file's,
// with the same text.
func checkNoDamage(t *testing.T, what string, good map[string]string, ta *tally) {
	t.Helper()
	for _, d := range ta.docs {
		want, ok := good[d.ID]
		if !ok {
			t.Errorf("%s: document %s is not in the undamaged file", what, d.ID)
		} else if want != d.Text {
			t.Errorf("%s: document %s has damaged text (%d characters, undamaged %d)", what, d.ID, len(d.Text), len(want))
		}
	}
}

const dolma0 = "warc/dolma_sample-0000.warc.gz" // 48 members, one record each

// Item 1: a single flipped byte anywhere in a per-record gzip WARC never
// lets a damaged document in, and every member is accounted for once.
func TestFaultFlippedByteInGzipMember(t *testing.T) {
	data := readShared(t, dolma0)
	dir := t.TempDir()
	orig := writeTestFile(t, dir, "orig.warc.gz", data)
	base := readAllRecords(t, orig, FormatAuto, ReaderOptions{})
	good := docTexts(base)
	members := gzipMembers(t, data)
	if len(members) != 48 || base.recs != 48 || len(base.errs) != 0 {
		t.Fatalf("sample: %d members, %d records, errors %v", len(members), base.recs, base.errs)
	}
	rng := rand.New(rand.NewPCG(19, 1))
	p := filepath.Join(dir, "flipped.warc.gz")
	cache := map[string]convResult{}
	flips := 12 // 40 in a thoroughness run (SMELT_THOROUGH)
	if os.Getenv("SMELT_THOROUGH") != "" {
		flips = 40
	}
	for i := 0; i < flips; i++ {
		bad := append([]byte(nil), data...)
		at := rng.IntN(len(bad))
		bad[at] ^= byte(1 + rng.IntN(255))
		if err := os.WriteFile(p, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		ta := readCached(t, p, cache)
		what := fmt.Sprintf("flip at %d", at)
		checkNoDamage(t, what, good, ta)
		if ta.fatal != nil {
			t.Fatalf("%s: %v", what, ta.fatal)
		}
		if got := ta.recs + recordErrs(ta); got != 48 {
			t.Errorf("%s: %d records + %d record errors = %d, want the 48 members (errors %v)", what, ta.recs, recordErrs(ta), got, ta.errs)
		}
		if len(ta.docs) < len(base.docs)-1 {
			t.Errorf("%s: %d documents, undamaged %d: one flip lost more than one record", what, len(ta.docs), len(base.docs))
		}
	}
}

// The exact case: a byte flipped inside the deflate data of a
// response member yields no document for it, one counted error naming the
// member's offset, and no extra record.
func TestFaultCorruptResponseMemberCRC(t *testing.T) {
	data, members, dir, good := dolmaBaseline(t)
	// Find a response member whose flip still inflates (so only the CRC can
	// tell): try flips in the middle of each member's deflate data.
	off := 0
	tried := 0
	for k, m := range members {
		start := off
		off += len(m)
		if !bytes.Contains(gunzip(t, m), []byte("WARC-Type: response")) {
			continue
		}
		for j := len(m) / 2; j < len(m)-8; j += 97 {
			mm := append([]byte(nil), m...)
			mm[j] ^= 0x01
			zr, _ := gzip.NewReader(bytes.NewReader(mm))
			_, err := io.Copy(io.Discard, zr)
			if !errors.Is(err, gzip.ErrChecksum) {
				continue
			}
			tried++
			bad := append(append(append([]byte(nil), data[:start]...), mm...), data[start+len(m):]...)
			p := writeTestFile(t, dir, "crc.warc.gz", bad)
			ta := readAllRecords(t, p, FormatAuto, ReaderOptions{})
			checkNoDamage(t, fmt.Sprintf("member %d flip %d", k, j), good, ta)
			if len(ta.errs) != 1 || ta.errs[0].Kind != ErrGzipCorrupt || ta.errs[0].Offset != int64(start) {
				t.Fatalf("member %d: errors %v, want one %s at %d", k, ta.errs, ErrGzipCorrupt, start)
			}
			if ta.recs != 47 {
				t.Fatalf("member %d: %d records, want 47 (+1 error = the 48 members)", k, ta.recs)
			}
			break
		}
		if tried >= 3 {
			break
		}
	}
	if tried == 0 {
		t.Fatal("no flip that only the CRC detects")
	}
}

// dolmaBaseline reads the undamaged per-record gzip sample: its bytes,
// its gzip members, a scratch directory and its documents' texts by id.
func dolmaBaseline(t *testing.T) (data []byte, members [][]byte, dir string, good map[string]string) {
	t.Helper()
	data = readShared(t, dolma0)
	members = gzipMembers(t, data)
	dir = t.TempDir()
	base := readAllRecords(t, writeTestFile(t, dir, "orig.warc.gz", data), FormatAuto, ReaderOptions{})
	return data, members, dir, docTexts(base)
}

var contentLength = regexp.MustCompile(`Content-Length: (\d+)`)

// editLength rewrites the Content-Length of a WARC record (its header only).
func editLength(t testing.TB, rec []byte, f func(int64) string) []byte {
	t.Helper()
	hdrEnd := bytes.Index(rec, []byte("\r\n\r\n"))
	loc := contentLength.FindSubmatchIndex(rec[:hdrEnd])
	if loc == nil {
		t.Fatal("no Content-Length")
	}
	n, _ := strconv.ParseInt(string(rec[loc[2]:loc[3]]), 10, 64)
	return append(append(append([]byte(nil), rec[:loc[2]]...), f(n)...), rec[loc[3]:]...)
}

func gzipMember(t testing.TB, b []byte) []byte { return gzipBytes(t, b) }

// lengthEdits are the wrong Content-Lengths of the issue, and a short one.
var lengthEdits = map[string]func(int64) string{
	"plus50000": func(n int64) string { return strconv.FormatInt(n+50000, 10) },
	"1e12":      func(int64) string { return "1000000000000" },
	"minus100":  func(n int64) string { return strconv.FormatInt(n-100, 10) },
}

// Item 2: a wrong Content-Length on one record costs that record only
// (counted), in per-record gzip, whole-file gzip and plain WARC.
func TestFaultWrongContentLength(t *testing.T) {
	_, members, dir, good := dolmaBaseline(t)
	// The 3rd response with a document.
	victim, seen := -1, 0
	var victimID string
	for k, m := range members {
		b := gunzip(t, m)
		if !bytes.Contains(b, []byte("WARC-Type: response")) {
			continue
		}
		id := "test/" + strings.Trim(string(regexp.MustCompile(`WARC-Record-ID: (\S+)`).FindSubmatch(b)[1]), "<>")
		if _, ok := good[id]; ok {
			if seen++; seen == 3 {
				victim, victimID = k, id
				break
			}
		}
	}
	if victim < 0 {
		t.Fatal("no victim")
	}
	for name, edit := range lengthEdits {
		plain := make([][]byte, len(members))
		for k, m := range members {
			plain[k] = gunzip(t, m)
		}
		plain[victim] = editLength(t, plain[victim], edit)
		layouts := map[string][]byte{}
		var perRec []byte
		for k, b := range plain {
			if k == victim {
				perRec = append(perRec, gzipMember(t, b)...)
			} else {
				perRec = append(perRec, members[k]...)
			}
		}
		layouts["member.warc.gz"] = perRec
		all := bytes.Join(plain, nil)
		layouts["plain.warc"] = all
		if name == "plus50000" || os.Getenv("SMELT_THOROUGH") != "" {
			// Whole-file gzip re-reads the file for each edit: one edit
			// unless a thoroughness run (SMELT_THOROUGH).
			layouts["whole.warc.gz"] = gzipBytes(t, all)
		}
		for lname, b := range layouts {
			t.Run(name+"/"+lname, func(t *testing.T) {
				p := writeTestFile(t, dir, lname, b)
				ta := readAllRecords(t, p, FormatAuto, ReaderOptions{})
				checkNoDamage(t, name, good, ta)
				if len(ta.docs) != len(good)-1 {
					t.Errorf("%d documents, want %d (all but the edited one); errors %v", len(ta.docs), len(good)-1, ta.errs)
				}
				if _, ok := docTexts(ta)[victimID]; ok {
					t.Errorf("the record with the wrong Content-Length became a document")
				}
				if ta.recs+recordErrs(ta) != 48 {
					t.Errorf("%d records + %d record errors, want 48 (errors %v)", ta.recs, recordErrs(ta), ta.errs)
				}
				if ta.byKind[ErrWARCBadLength] != 1 {
					t.Errorf("errors %v, want one %s", ta.errs, ErrWARCBadLength)
				}
			})
		}
	}
}

// Item 4: the runner checks each input's records against what the
// reader's framing counted, so a record that disappears between the
// reader and the stats fails the run instead of passing unnoticed.
func TestFaultLostRecordFailsAccounting(t *testing.T) {
	p := testutil.SharedData(t, dolma0)
	dropOne := func(r RecordReader) RecordReader { return &droppingReader{RecordReader: r, drop: 7} }
	testHookReader = dropOne
	defer func() { testHookReader = nil }()
	_, err := Run(context.Background(), []string{p}, t.TempDir(), Options{Source: "cc", Workers: 2})
	if err == nil || !strings.Contains(err.Error(), "accounting") {
		t.Fatalf("a record lost between reader and stats: err = %v, want an accounting failure", err)
	}
	testHookReader = nil
	st, err := Run(context.Background(), []string{p}, t.TempDir(), Options{Source: "cc", Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if st.In.Docs != 48 {
		t.Fatalf("%d records in, want the 48 framed", st.In.Docs)
	}
}

// droppingReader loses its drop-th record, as a reader bug would.
type droppingReader struct {
	RecordReader
	drop, n int
}

func (d *droppingReader) Next() (*Record, error) {
	rec, err := d.RecordReader.Next()
	if err == nil {
		if d.n++; d.n == d.drop {
			return d.RecordReader.Next()
		}
	}
	return rec, err
}

// Item 4 on real damage: the CRC error of a corrupt member is one record,
// not an extra one (51 counted in a 50-record file before).
func TestFaultCorruptMemberCountsOnce(t *testing.T) {
	data := readShared(t, "warc/resiliparse_CC-MAIN-2020-34_warcfile.warc.gz")
	members := gzipMembers(t, data)
	if len(members) != 50 {
		t.Fatalf("%d members", len(members))
	}
	off := 0
	for _, m := range members[:10] {
		off += len(m)
	}
	bad := append([]byte(nil), data...)
	bad[off+len(members[10])-6] ^= 0xff // inside the CRC-32 of member 10
	p := writeTestFile(t, t.TempDir(), "crc.warc.gz", bad)
	st, err := Run(context.Background(), []string{p}, t.TempDir(), Options{Source: "cc", Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if st.In.Docs != 50 || st.Errors[ErrGzipCorrupt].Docs != 1 {
		t.Fatalf("%d records in, errors %v: want 50 with one %s", st.In.Docs, st.Errors, ErrGzipCorrupt)
	}
}

// Item 3: JSONL documents without ids get ids unique over the source, so
// two files of one source do not share "line N".
func TestFaultJSONLWithoutIDsUniqueOverSource(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i, rel := range []string{"jsonl/dolma_cc_en_head-0091.jsonl", "jsonl/dolma_cc_en_head-0174.jsonl"} {
		var b bytes.Buffer
		for _, line := range bytes.Split(bytes.TrimSpace(readShared(t, rel)), []byte("\n")) {
			b.Write(regexp.MustCompile(`"id":"[^"]*",`).ReplaceAll(line, nil))
			b.WriteByte('\n')
		}
		if bytes.Contains(b.Bytes(), []byte(`"id":`)) {
			t.Fatal("ids left")
		}
		sub := filepath.Join(dir, fmt.Sprintf("part%d", i))
		os.MkdirAll(sub, 0o755)
		files = append(files, writeTestFile(t, sub, "data.jsonl", b.Bytes()))
	}
	out := t.TempDir()
	st, err := Run(context.Background(), files, out, Options{Source: "cc", Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	docs := testutil.ReadDocs(t, out)
	ids := map[string]bool{}
	for _, d := range docs {
		ids[d.ID] = true
	}
	if st.Out.Docs != 20 || len(ids) != 20 {
		t.Fatalf("%d documents, %d distinct ids, want 20 and 20: %v", st.Out.Docs, len(ids), ids)
	}
	for id := range ids {
		if !strings.Contains(id, "part0/data.jsonl") && !strings.Contains(id, "part1/data.jsonl") {
			t.Errorf("id %q does not name its file", id)
		}
	}
	_ = shards.SumCounts
}

// bigArticle is an HTML page of about n bytes: one article of real
// WikiText paragraphs, the kind of page whose extraction time grows with
// the square of its size.
func bigArticle(t testing.TB, n int) []byte {
	t.Helper()
	text := readShared(t, "clean_text/wikitext-2_test.txt")
	var b bytes.Buffer
	b.WriteString("<!DOCTYPE html><html lang=\"en\"><head><title>A long article</title></head><body><article><h1>A long article</h1>\n")
	lines := bytes.Split(text, []byte("\n"))
	for i := 0; b.Len() < n; i++ {
		if l := bytes.TrimSpace(lines[i%len(lines)]); len(l) > 0 && !bytes.HasPrefix(l, []byte("=")) {
			b.WriteString("<p>")
			b.Write(bytes.ReplaceAll(bytes.ReplaceAll(l, []byte("&"), []byte("&amp;")), []byte("<"), []byte("&lt;")))
			b.WriteString("</p>\n")
		}
	}
	b.WriteString("</article></body></html>\n")
	return b.Bytes()
}

// Item 5: a page over the HTML cap is dropped as html/too_large without
// being extracted; one under it is extracted.
func TestFaultLargeHTMLCapped(t *testing.T) {
	page := bigArticle(t, 300<<10)
	rec := httpRecord(200, "Content-Type: text/html; charset=utf-8", page)
	rec.MaxHTML = 256 << 10
	start := time.Now()
	if _, skip, err := Convert(rec, "test"); err != nil || skip != SkipHTMLTooLarge {
		t.Fatalf("page of %d bytes over a %d-byte cap: skip %q err %v", len(page), rec.MaxHTML, skip, err)
	}
	// Not extracted is what the skip reason says; the time is logged, not
	// asserted (no test depends on the machine's load).
	t.Logf("dropping an oversized page took %v", time.Since(start))
	rec.MaxHTML = 512 << 10
	if doc, skip, err := Convert(rec, "test"); err != nil || skip != "" || len(doc.Text) < 200<<10 {
		t.Fatalf("page under the cap: skip %q err %v", skip, err)
	}
	// The default cap applies when none is set.
	rec.MaxHTML = 0
	rec.Body = httpResp(200, "Content-Type: text/html", bigArticle(t, DefaultMaxHTMLBytes+1000))
	if _, skip, _ := Convert(rec, "test"); skip != SkipHTMLTooLarge {
		t.Fatalf("page over the default cap: skip %q", skip)
	}
}

// Item 5: an extraction over its time budget is dropped as
// extract/timeout, and a cancelled context stops Convert at once.
func TestFaultExtractTimeoutAndCancel(t *testing.T) {
	rec := httpRecord(200, "Content-Type: text/html; charset=utf-8", bigArticle(t, 1<<20))
	rec.ExtractTimeout = 50 * time.Millisecond
	start := time.Now()
	if _, skip, err := Convert(rec, "test"); err != nil || skip != SkipExtractTimeout {
		t.Fatalf("skip %q err %v, want %s", skip, err, SkipExtractTimeout)
	}
	t.Logf("a 50 ms budget took %v", time.Since(start)) // logged: load-dependent
	rec.ExtractTimeout = 0
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	if _, _, err := ConvertContext(ctx, rec, "test"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err %v", err)
	}
	t.Logf("cancel took %v to stop Convert", time.Since(start)) // logged: load-dependent
}

// Item 6: symlinks in an input directory are followed to files; dangling
// links, links to directories and FIFOs are counted with a reason.
func TestFaultSymlinksAndSpecialFilesInDirectory(t *testing.T) {
	real := testutil.SharedData(t, "warc/dolma_sample-0001.warc.gz")
	abs, err := filepath.Abs(real)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(abs, filepath.Join(dir, "a-linked.warc.gz")))
	must(os.Symlink(filepath.Join(dir, "nowhere.warc.gz"), filepath.Join(dir, "b-dangling.warc.gz")))
	must(os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	must(os.Symlink(filepath.Join(dir, "sub"), filepath.Join(dir, "c-dirlink")))
	must(syscall.Mkfifo(filepath.Join(dir, "d-fifo"), 0o644))
	writeTestFile(t, filepath.Join(dir, "sub"), "e.jsonl", []byte(`{"id":"x","text":"Rivers carry water to the sea."}`+"\n"))
	files, skipped, err := ExpandInputsSkipped(context.Background(), []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || filepath.Base(files[0]) != "a-linked.warc.gz" || filepath.Base(files[1]) != "e.jsonl" {
		t.Fatalf("files %v", files)
	}
	reasons := map[string]string{}
	for _, s := range skipped {
		reasons[filepath.Base(s.Path)] = s.Reason
	}
	want := map[string]string{"b-dangling.warc.gz": SkipInputDangling, "c-dirlink": SkipInputDirLink, "d-fifo": SkipInputNotRegular}
	for k, v := range want {
		if reasons[k] != v {
			t.Errorf("%s: reason %q, want %q (all: %v)", k, reasons[k], v, reasons)
		}
	}
	st, err := Run(context.Background(), files, t.TempDir(), Options{Source: "cc", Workers: 2, Skipped: skipped})
	if err != nil {
		t.Fatal(err)
	}
	// 34 records of the linked WARC, 1 JSONL line, 3 skipped entries.
	if st.In.Docs != 34+1+3 || st.Dropped[SkipInputDangling].Docs != 1 || st.Dropped[SkipInputDirLink].Docs != 1 || st.Dropped[SkipInputNotRegular].Docs != 1 {
		t.Fatalf("in %d, dropped %v", st.In.Docs, st.Dropped)
	}
}

// Item 7: a pipe given as an input, and "-" for standard input, are read
// as streams, to the same documents as the file.
func TestFaultPipeAndStdinInputs(t *testing.T) {
	data := readShared(t, dolma0)
	base, err := Run(context.Background(), []string{testutil.SharedData(t, dolma0)}, t.TempDir(), Options{Source: "cc", Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	feed := func(w io.WriteCloser, b []byte) {
		go func() { w.Write(b); w.Close() }()
	}
	check := func(what string, st *shards.Stats, out string) {
		t.Helper()
		if st.Out.Docs != base.Out.Docs || st.In.Docs != base.In.Docs {
			t.Fatalf("%s: %d in, %d kept; the file gives %d in, %d kept", what, st.In.Docs, st.Out.Docs, base.In.Docs, base.Out.Docs)
		}
	}
	t.Run("fifo", func(t *testing.T) {
		fifo := filepath.Join(t.TempDir(), "crawl-fifo")
		if err := syscall.Mkfifo(fifo, 0o644); err != nil {
			t.Fatal(err)
		}
		go func() {
			w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
			if err == nil {
				feed(w, data)
			}
		}()
		files, _, err := ExpandInputsSkipped(context.Background(), []string{fifo})
		if err != nil || len(files) != 1 {
			t.Fatalf("%v %v", files, err)
		}
		out := t.TempDir()
		st, err := Run(context.Background(), files, out, Options{Source: "cc", Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		check("fifo", st, out)
	})
	t.Run("stdin", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		old := os.Stdin
		os.Stdin = r
		defer func() { os.Stdin = old; r.Close() }()
		feed(w, data)
		files, _, err := ExpandInputsSkipped(context.Background(), []string{"-"})
		if err != nil || len(files) != 1 || files[0] != "-" {
			t.Fatalf("%v %v", files, err)
		}
		out := t.TempDir()
		st, err := Run(context.Background(), files, out, Options{Source: "cc", Workers: 2, Format: FormatWARC})
		if err != nil {
			t.Fatal(err)
		}
		check("stdin", st, out)
	})
}

// Item 10: a UTF-8 byte-order mark at the start of a JSONL file is not
// part of its first line.
func TestFaultJSONLByteOrderMark(t *testing.T) {
	data := readShared(t, "jsonl/dolma_cc_en_head-0091.jsonl")
	dir := t.TempDir()
	for name, b := range map[string][]byte{
		"bom.jsonl":    append([]byte("\ufeff"), data...),
		"bom.jsonl.gz": gzipBytes(t, append([]byte("\ufeff"), data...)),
	} {
		ta := readAllRecords(t, writeTestFile(t, dir, name, b), FormatAuto, ReaderOptions{})
		if len(ta.errs) != 0 || len(ta.docs) != 10 {
			t.Fatalf("%s: %d documents, errors %v", name, len(ta.docs), ta.errs)
		}
	}
}

// Item 11: a Parquet file without the text column, or whose text column is
// not a string column, is a configuration error that fails the run.
func TestFaultParquetTextColumnIsConfiguration(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "content.parquet")
	writeParquet(t, p, 50, "content")
	for _, c := range []struct {
		field, want string
	}{
		{"", `no column "text"`},
		{"token_count", `"token_count" is int64`},
	} {
		_, err := Run(context.Background(), []string{p}, t.TempDir(), Options{Source: "pq", Reader: ReaderOptions{TextField: c.field}})
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "content.parquet") {
			t.Errorf("text field %q: err %v, want a configuration error saying %s", c.field, err, c.want)
		}
	}
	st, err := Run(context.Background(), []string{p}, t.TempDir(), Options{Source: "pq", Reader: ReaderOptions{TextField: "content"}})
	if err != nil || st.In.Docs != 50 {
		t.Fatalf("with --text-field content: %v, %+v", err, st)
	}
}

// Item 5: pages under the byte cap whose parsed tree is too big or too
// deep for extraction (measured: 2 MiB of tiny elements took 1 GB and
// 54 s, 1.6 MB of nested divs over a minute) are dropped as
// html/too_large, quickly.
func TestFaultHTMLTreeLimits(t *testing.T) {
	words := strings.Fields(string(readShared(t, "clean_text/tinyshakespeare.txt")[:200000]))
	var tiny strings.Builder
	tiny.WriteString("<html><body><article>")
	for i := 0; tiny.Len() < 1<<20; i += 2 {
		fmt.Fprintf(&tiny, "<p><span>%s</span> <b>%s</b></p>\n", words[i%len(words)], words[(i+1)%len(words)])
	}
	tiny.WriteString("</article></body></html>")
	deep := "<html><body>" + strings.Repeat("<div><p>a ", 100000) + "</body></html>"
	for name, page := range map[string]string{"tiny elements": tiny.String(), "deep nesting": deep} {
		rec := httpRecord(200, "Content-Type: text/html; charset=utf-8", []byte(page))
		start := time.Now()
		if _, skip, err := Convert(rec, "test"); err != nil || skip != SkipHTMLTooLarge {
			t.Errorf("%s (%d bytes): skip %q err %v, want %s", name, len(page), skip, err, SkipHTMLTooLarge)
		}
		// Dropped before extraction is what keeps it quick; the time is
		// logged, not asserted (no test depends on the machine's load).
		t.Logf("%s: dropped in %v", name, time.Since(start))
	}
}

// A gzip member that does not end with a line break, followed by a member
// that starts a record: the record is read, and the member before counted
// as garbage (otherwise the record would vanish into a garbage line).
func TestFaultMemberWithoutLineBreakBeforeRecord(t *testing.T) {
	members := gzipMembers(t, readShared(t, dolma0))
	var b []byte
	b = append(b, gzipBytes(t, []byte("stray bytes without a line break"))...)
	for _, m := range members {
		b = append(b, m...)
	}
	ta := readAllRecords(t, writeTestFile(t, t.TempDir(), "stray.warc.gz", b), FormatAuto, ReaderOptions{})
	if ta.recs != 48 || ta.byKind[ErrWARCGarbage] != 1 || len(ta.errs) != 1 {
		t.Fatalf("%d records, errors %v: want the 48 records and one garbage", ta.recs, ta.errs)
	}
	checkReader(t, writeTestFile(t, t.TempDir(), "stray.warc.gz", b), FormatAuto, ReaderOptions{}, false)
}
