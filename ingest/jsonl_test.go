package ingest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestJSONLGoodBadAndHuge(t *testing.T) {
	dir := t.TempDir()
	huge := `{"id":"huge","text":"` + strings.Repeat("x", 5000) + `"}`
	lines := []string{
		`{"id":"a","text":"Rivers carry water from high ground to the sea.","source":"cc","metadata":{"url":"https://a.example/","lang":"en"}}`,
		`{"id":"b","text":"broken`, // bad JSON
		"{\"id\":\"c\",\"text\":\"bad \xff byte\"}",
		huge,
		``,
		`{"id":7,"text":"Die Flüsse tragen das Wasser vom Gebirge bis zum Meer hinunter.","created":"2020-01-02T03:04:05Z"}`,
		`{"id":"notext","body":"no text field"}`,
		`{"text":"Un fleuve porte l'eau des montagnes jusqu'à la mer, depuis toujours."}`,
	}
	body := []byte(strings.Join(lines, "\n") + "\n")
	enc, _ := zstd.NewWriter(nil)
	for name, b := range map[string][]byte{"d.jsonl": body, "d.jsonl.gz": gzipBytes(t, body), "d.jsonl.zst": enc.EncodeAll(body, nil)} {
		t.Run(name, func(t *testing.T) {
			p := writeTestFile(t, dir, name, b)
			ta := readAllRecords(t, p, FormatAuto, ReaderOptions{MaxRecordBytes: 4096})
			if ta.fatal != nil {
				t.Fatal(ta.fatal)
			}
			kinds := map[string]int{}
			for _, e := range ta.errs {
				kinds[e.Kind] = e.Line
			}
			if kinds[ErrJSONInvalid] != 2 || kinds[ErrUTF8Invalid] != 3 || kinds[ErrRecordTooLarge] != 4 || len(ta.errs) != 3 {
				t.Fatalf("errors %v", ta.errs)
			}
			if ta.skips[SkipJSONNoText] != 1 || len(ta.docs) != 3 {
				t.Fatalf("skips %v docs %d", ta.skips, len(ta.docs))
			}
			ids := []string{ta.docs[0].ID, ta.docs[1].ID, ta.docs[2].ID}
			if ids[0] != "test/a" || ids[1] != "test/7" || ids[2] != "test/line 8" {
				t.Fatalf("ids %v", ids)
			}
			if l := []string{ta.docs[0].Lang, ta.docs[1].Lang, ta.docs[2].Lang}; l[0] != "en" || l[1] != "de" || l[2] != "fr" {
				t.Errorf("langs %v", l)
			}
			if ta.docs[0].URL != "https://a.example/" || ta.docs[1].Date != "2020-01-02T03:04:05Z" {
				t.Errorf("url %q date %q", ta.docs[0].URL, ta.docs[1].Date)
			}
			var meta map[string]any
			if err := json.Unmarshal([]byte(ta.docs[0].Meta), &meta); err != nil {
				t.Fatal(err)
			}
			if js, _ := meta["json"].(map[string]any); js["source"] != "cc" {
				t.Errorf("original JSON fields not kept: %v", meta)
			}
		})
	}
}

func TestJSONLFieldOverridesAndEmpty(t *testing.T) {
	dir := t.TempDir()
	p := writeTestFile(t, dir, "f.jsonl", []byte(`{"doc_id":"x1","content":"Rivers carry water from high ground to the sea."}`+"\n"))
	ta := readAllRecords(t, p, FormatJSONL, ReaderOptions{TextField: "content", IDField: "doc_id"})
	if len(ta.docs) != 1 || ta.docs[0].ID != "test/x1" {
		t.Fatalf("docs %+v errs %v", ta.docs, ta.errs)
	}
	p = writeTestFile(t, dir, "e.jsonl", nil)
	ta = readAllRecords(t, p, FormatJSONL, ReaderOptions{})
	if len(ta.errs) != 1 || ta.errs[0].Kind != ErrEmptyFile {
		t.Fatalf("errors %v", ta.errs)
	}
}

func TestJSONLHugeLineMemoryBounded(t *testing.T) {
	// A 48 MiB line over a 1 MiB limit is skipped without being buffered:
	// the reader never holds more than its 1 MiB read buffer plus the limit.
	var b bytes.Buffer
	b.WriteString(`{"id":"big","text":"`)
	b.Write(bytes.Repeat([]byte("y"), 48<<20))
	b.WriteString("\"}\n{\"id\":\"small\",\"text\":\"after the big one\"}\n")
	p := writeTestFile(t, t.TempDir(), "big.jsonl", b.Bytes())
	b.Reset()
	r, err := Open(p, FormatJSONL, ReaderOptions{MaxRecordBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.Next()
	if re, ok := IsRecordError(err); !ok || re.Kind != ErrRecordTooLarge || re.Line != 1 {
		t.Fatalf("first: %v", err)
	}
	rec, err := r.Next()
	if err != nil || rec.Key != "small" || rec.Line != 2 {
		t.Fatalf("second: %+v %v", rec, err)
	}
	if jr := r.(*jsonlReader); cap(jr.buf) > 2<<20 {
		t.Fatalf("line buffer grew to %d bytes", cap(jr.buf))
	}
}

func TestSharedJSONL(t *testing.T) {
	for _, f := range []string{"jsonl/dolma_cc_en_head-0091.jsonl", "jsonl/dolma_cc_en_head-0174.jsonl", "jsonl/dolma_provided_documents_000.jsonl.gz"} {
		ta := readAllRecords(t, dataPath(t, f), FormatAuto, ReaderOptions{})
		if len(ta.docs) != 10 || len(ta.errs) != 0 {
			t.Fatalf("%s: docs %d errors %v", f, len(ta.docs), ta.errs)
		}
		for _, d := range ta.docs {
			if d.Lang != "en" {
				t.Errorf("%s: %s lang %q", f, d.ID, d.Lang)
			}
		}
	}
}

func TestJSONLCorruptGzipMemberResyncs(t *testing.T) {
	var file []byte
	var offsets []int
	for i := 0; i < 5; i++ {
		offsets = append(offsets, len(file))
		line := `{"id":"d` + string(rune('0'+i)) + `","text":"Rivers carry water from high ground to the sea, number ` + string(rune('0'+i)) + `."}` + "\n"
		file = append(file, gzipBytes(t, []byte(line))...)
	}
	for i := offsets[2] + 12; i < offsets[2]+30; i++ {
		file[i] ^= 0x33
	}
	p := writeTestFile(t, t.TempDir(), "c.jsonl.gz", file)
	ta := readAllRecords(t, p, FormatAuto, ReaderOptions{})
	if len(ta.errs) != 1 || ta.errs[0].Kind != ErrGzipCorrupt || ta.errs[0].Offset != int64(offsets[2]) {
		t.Fatalf("errors %v", ta.errs)
	}
	if len(ta.docs) != 4 || ta.docs[2].ID != "test/d3" {
		t.Fatalf("docs %d", len(ta.docs))
	}
}
