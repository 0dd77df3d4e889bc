package report

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestFixtureReportSmoke(t *testing.T) {
	f := getFixture(t)
	run, err := Load(f.Dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "r.html")
	fh, _ := os.Create(out)
	if err := Write(context.Background(), fh, run); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	os.WriteFile("/tmp/smelt-report-smoke.html", must(os.ReadFile(out)), 0o644)
	for _, s := range run.Steps {
		t.Log(s.Name, s.Kind())
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
