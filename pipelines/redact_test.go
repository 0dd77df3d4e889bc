package pipelines

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A presigned URL's credentials reach neither the run directory's recipe
// copy and plan nor any output; the same objects signed again reopen the
// same run.
func TestPresignedInputsLeaveNoSecretInRunDir(t *testing.T) {
	dir := t.TempDir()
	setupRun(t, dir, false)
	files, _ := filepath.Glob(filepath.Join(dir, "crawl", "*.jsonl"))
	if len(files) == 0 {
		t.Fatal("no crawl files")
	}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.RawQuery, "X-Amz-Signature=SECRETSIG") {
			http.Error(w, "bad signature", http.StatusForbidden)
			return
		}
		http.ServeFile(w, r, filepath.Join(dir, "crawl", filepath.Base(r.URL.Path)))
	}))
	defer s.Close()
	recipeFor := func(when string) string {
		var urls []string
		for _, f := range files {
			urls = append(urls, fmt.Sprintf("%q", s.URL+"/c/"+filepath.Base(f)+"?X-Amz-Credential=AKIASECRETID&X-Amz-Date="+when+"&X-Amz-Signature=SECRETSIG"+when))
		}
		y := strings.Replace(testRecipe(false), "inputs: [crawl/*.jsonl]", "inputs: ["+strings.Join(urls, ", ")+"]", 1)
		p := filepath.Join(dir, "recipe-"+when+".yaml")
		if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	runDir := filepath.Join(dir, "run")
	runRecipe(t, recipeFor("20250101T000000Z"), runDir, 2)
	n := 0
	err := filepath.Walk(runDir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		n++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "SECRET") {
			t.Errorf("%s holds a credential", p)
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("walk: %v (%d files)", err, n)
	}
	// Signed again: the same run, nothing to redo.
	run := openRecipe(t, recipeFor("20250102T000000Z"), runDir)
	for _, st := range run.Plan.Steps {
		if p := run.Pending(st); len(p) != 0 {
			t.Fatalf("step %s: %d tasks pending after signing the inputs again", st.Name, len(p))
		}
	}
}
