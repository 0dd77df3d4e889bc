package main

import (
	"bytes"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The plain progress line gives an ETA only once 1% of the job is done:
// from the first bytes of a job the rate is the start-up's, and an ETA
// from it read days for a job of a minute.
func TestProgressETA(t *testing.T) {
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	defer slog.SetDefault(old)
	p := newProgress(&buf, "ingest", 8<<20)
	p.start = time.Now().Add(-10 * time.Second)
	p.records, p.docs, p.done = 2, 1, 4096
	p.log("progress")
	if line := buf.String(); !strings.Contains(line, "pct=0.0") || strings.Contains(line, "eta=") {
		t.Errorf("0.05%% done: want the percentage and no ETA:\n%s", line)
	}
	buf.Reset()
	p.done = 4 << 20
	p.log("progress")
	// Half done in 10 s (or a little more, on a loaded machine): about
	// 10 s to go.
	line := buf.String()
	m := regexp.MustCompile(`eta=(\S+)`).FindStringSubmatch(line)
	if !strings.Contains(line, "pct=50.0") || m == nil {
		t.Fatalf("half done: want pct=50.0 and an ETA:\n%s", line)
	}
	if eta, err := time.ParseDuration(m[1]); err != nil || eta < 10*time.Second || eta > time.Minute {
		t.Errorf("half done in 10 s: ETA %s, want about 10s", m[1])
	}
}
