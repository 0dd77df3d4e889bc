package main

import (
	"bytes"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"
)

// captureSlog sends the default logger's output (the plain progress
// lines) to a buffer until the test ends. Only for tests that are not
// parallel: the default logger is the process's.
func captureSlog(t *testing.T) *bytes.Buffer {
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	return &buf
}

// TestProgressFinishOnError: a job that failed does not log "done".
func TestProgressFinishOnError(t *testing.T) {
	buf := captureSlog(t)
	p := newProgress(buf, "ingest", 100)
	p.update(50, 5, 5)
	p.finish(errors.New("write part-00000.arrow: no space left on device"))
	if strings.Contains(buf.String(), "msg=done") {
		t.Errorf("a failed job logged done:\n%s", buf.String())
	}
	buf.Reset()
	p = newProgress(buf, "ingest", 100)
	p.update(100, 5, 5)
	p.finish(nil)
	if !strings.Contains(buf.String(), "msg=done") {
		t.Errorf("a finished job did not log done:\n%s", buf.String())
	}
}

// The plain progress line gives an ETA only once 1% of the job is done:
// from the first bytes of a job the rate is the start-up's, and an ETA
// from it read days for a job of a minute.
func TestProgressETA(t *testing.T) {
	buf := captureSlog(t)
	p := newProgress(buf, "ingest", 8<<20)
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
