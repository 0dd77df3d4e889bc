package filter

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

// sharedData is the real public test data, next to the repository.
var sharedData = filepath.Join("..", "..", "shared", "data")

func needShared(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(sharedData); err != nil {
		t.Skipf("real test data not found at %s (a clone without ../shared): skipping", sharedData)
	}
}

func openMaybeGzip(t testing.TB, path string) io.ReadCloser {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(path, ".gz") {
		return f
	}
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	return struct {
		io.Reader
		io.Closer
	}{z, f}
}

// readText returns a whole text file (gzip-decoded when .gz).
func readText(t testing.TB, rel string) string {
	t.Helper()
	r := openMaybeGzip(t, filepath.Join(sharedData, rel))
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readWET parses the conversion records of a WET file into documents (a
// small independent parser, so these tests do not depend on ingest).
func readWET(t testing.TB, rel string) []*shards.Document {
	t.Helper()
	r := openMaybeGzip(t, filepath.Join(sharedData, rel))
	defer r.Close()
	br := bufio.NewReader(r)
	var docs []*shards.Document
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return docs
		}
		if !strings.HasPrefix(line, "WARC/") {
			continue
		}
		h := map[string]string{}
		for {
			line, err = br.ReadString('\n')
			line = strings.TrimRight(line, "\r\n")
			if err != nil || line == "" {
				break
			}
			if k, v, ok := strings.Cut(line, ":"); ok {
				h[strings.ToLower(k)] = strings.TrimSpace(v)
			}
		}
		n, _ := strconv.Atoi(h["content-length"])
		body := make([]byte, n)
		if _, err := io.ReadFull(br, body); err != nil {
			return docs
		}
		if h["warc-type"] == "conversion" {
			docs = append(docs, &shards.Document{ID: h["warc-record-id"], URL: h["warc-target-uri"], Text: string(body)})
		}
	}
}

// readJSONL reads documents with "id" and "text" fields.
func readJSONL(t testing.TB, rel string) []*shards.Document {
	t.Helper()
	r := openMaybeGzip(t, filepath.Join(sharedData, rel))
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var docs []*shards.Document
	for sc.Scan() {
		var v struct {
			ID   string `json:"id"`
			Text string `json:"text"`
		}
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		docs = append(docs, &shards.Document{ID: v.ID, URL: v.ID, Text: v.Text})
	}
	return docs
}

// crawlDocs returns the real Common Crawl text documents in ../shared/data.
func crawlDocs(t testing.TB) []*shards.Document {
	needShared(t)
	var docs []*shards.Document
	for _, f := range []string{"wet/jh_CC-MAIN-2016-50_filter_test_1.wet.gz", "wet/jh_CC-MAIN-2016-50_fragment3_ru.wet.gz",
		"wet/cc_whirlwind.warc.wet.gz", "wet/ccnet_sample.warc.txt"} {
		docs = append(docs, readWET(t, f)...)
	}
	for _, f := range []string{"jsonl/dolma_cc_en_head-0091.jsonl", "jsonl/dolma_cc_en_head-0174.jsonl", "jsonl/dolma_provided_documents_000.jsonl.gz"} {
		docs = append(docs, readJSONL(t, f)...)
	}
	return docs
}

// referenceChunks returns clean reference text split into ~2 kB pieces.
func referenceChunks(t testing.TB, rel string) []*shards.Document {
	needShared(t)
	var docs []*shards.Document
	for i, c := range ChunkText(readText(t, rel), 2000) {
		docs = append(docs, &shards.Document{ID: fmt.Sprintf("%s#%d", rel, i), Text: c})
	}
	return docs
}

// findDoc returns the document whose URL contains s.
func findDoc(t testing.TB, docs []*shards.Document, s string) *shards.Document {
	t.Helper()
	for _, d := range docs {
		if strings.Contains(d.URL, s) {
			return d
		}
	}
	t.Fatalf("no document with URL containing %q", s)
	return nil
}

// allRules returns every rule with default settings.
func allRules() []Rule {
	return []Rule{DefaultGopherRepetition(), DefaultGopherQuality(), DefaultC4(), DefaultFineWebQuality(),
		&Language{Languages: []string{"en"}, MinScore: 0.65}, &URLBlock{Domains: []string{"example.com"}, Substrings: []string{"casino"}}}
}
