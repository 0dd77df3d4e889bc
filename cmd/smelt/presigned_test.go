package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// S1 of issue 26: presigned URLs as inputs leave no credential in what
// smelt ingest prints, in smelt stats (text and JSON), in the output
// directory, or in an export's ids.
func TestPresignedInputsLeaveNoSecretInOutputs(t *testing.T) {
	files := map[string]string{
		"/b/notes.txt":  "plain notes fetched through a presigned link, long enough to be kept as a document",
		"/b/page.html":  "<html><head><title>Presigned</title></head><body><p>A page fetched through a presigned link, with enough words to keep.</p></body></html>",
		"/b/rows.jsonl": "{\"text\": \"a row of text from a presigned object\"}\n{broken json\n",
	}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := files[r.URL.Path]
		if !ok || r.URL.Query().Get("X-Amz-Signature") != "SECRETSIG" {
			http.Error(w, "denied", http.StatusForbidden)
			return
		}
		http.ServeContent(w, r, filepath.Base(r.URL.Path), time.Unix(1700000000, 0), strings.NewReader(body))
	}))
	defer s.Close()
	q := "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIASECRETID%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20250101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=SECRETSIG&X-Amz-Security-Token=SECRETTOKEN"
	dir := t.TempDir()
	out := filepath.Join(dir, "docs")
	var printed bytes.Buffer
	run := func(args ...string) {
		t.Helper()
		o, err := runSmelt(t, args...)
		printed.WriteString(o)
		if err != nil {
			t.Fatalf("smelt %s: %v\n%s", strings.Join(args, " "), err, o)
		}
	}
	run("ingest", s.URL+"/b/notes.txt"+q, s.URL+"/b/page.html"+q, s.URL+"/b/rows.jsonl"+q, "--out", out, "--source", "p")
	run("stats", out)
	run("stats", "--json", out)
	run("export", out, "--format", "jsonl", "--out", filepath.Join(dir, "export"))
	if !strings.Contains(printed.String(), "rows.jsonl") {
		t.Fatalf("the broken line's error does not name its input:\n%s", printed.String())
	}
	if strings.Contains(printed.String(), "SECRET") {
		t.Errorf("printed output holds a credential:\n%s", printed.String())
	}
	n := 0
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return err
		}
		n++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("SECRET")) || bytes.Contains(b, []byte("X-Amz")) {
			t.Errorf("%s holds a credential", p)
		}
		return nil
	})
	if n < 4 {
		t.Fatalf("only %d files written", n)
	}
}
