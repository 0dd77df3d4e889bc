package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
)

// TestSmeltMainChild runs smelt's main in a child process of the test (see
// startSmelt); it does nothing in a normal test run.
func TestSmeltMainChild(t *testing.T) {
	args := os.Getenv("SMELT_CHILD_ARGS")
	if args == "" {
		t.Skip("only as a child process")
	}
	os.Args = append([]string{"smelt"}, strings.Split(args, "\x1f")...)
	main()
}

func startSmelt(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSmeltMainChild$")
	// A grace long enough that a verb stopping on a signal stops by itself,
	// however loaded the machine is (see stopGrace).
	cmd.Env = append(os.Environ(), "SMELT_CHILD_ARGS="+strings.Join(args, "\x1f"), "SMELT_STOP_GRACE=1h")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

// slowWARC writes a WARC of pages whose extraction takes a while each
// (long articles of real WikiText paragraphs).
func slowWARC(t *testing.T, pages, size int) string {
	t.Helper()
	text, err := os.ReadFile(testutil.SharedData(t, "clean_text/wikitext-2_test.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(text, []byte("\n"))
	var w bytes.Buffer
	info := "software: smelt signal test\r\n"
	fmt.Fprintf(&w, "WARC/1.0\r\nWARC-Type: warcinfo\r\nWARC-Record-ID: <urn:uuid:info>\r\nContent-Length: %d\r\n\r\n%s\r\n\r\n", len(info), info)
	k := 0
	for p := 0; p < pages; p++ {
		var b bytes.Buffer
		fmt.Fprintf(&b, "<html lang=\"en\"><head><title>Article %d</title></head><body><article>\n", p)
		for b.Len() < size {
			if l := bytes.TrimSpace(lines[k%len(lines)]); len(l) > 0 {
				b.WriteString("<p>" + strings.ReplaceAll(strings.ReplaceAll(string(l), "&", "&amp;"), "<", "&lt;") + "</p>\n")
			}
			k++
		}
		b.WriteString("</article></body></html>")
		block := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n%s", b.String())
		fmt.Fprintf(&w, "WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:page-%d>\r\nWARC-Target-URI: https://example.org/%d\r\nContent-Type: application/http; msgtype=response\r\nContent-Length: %d\r\n\r\n%s\r\n\r\n",
			p, p, len(block), block)
	}
	path := filepath.Join(t.TempDir(), "slow.warc")
	if err := os.WriteFile(path, w.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Item 5 of issue 19: SIGTERM and Ctrl-C stop an ingest busy with slow
// pages within seconds, with exit status 143 and 130, leaving what resumes
// to the same output as an uninterrupted run.
func TestIngestStopsOnSignal(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	if testing.Short() {
		t.Skip("runs smelt ingest three times (-short)")
	}
	// Three pages of 1 MiB, a shard each: the signal comes with one or
	// two pages still to extract (eight under SMELT_THOROUGH).
	pages := 3
	if testutil.IsThorough() {
		pages = 8
	}
	warc := slowWARC(t, pages, 1<<20)
	ref := filepath.Join(t.TempDir(), "ref")
	if out, err := runSmelt(t, "ingest", warc, "--out", ref, "--workers", "2", "--shard-mb", "1"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, c := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGTERM, 143}, {syscall.SIGINT, 130}} {
		// SIGINT takes the same path to a different status (130): under
		// SMELT_THOROUGH only, with TestTrainInterruptResumes sending it
		// to train on every run.
		if c.sig == syscall.SIGINT && !testutil.IsThorough() {
			continue
		}
		t.Run(c.sig.String(), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			cmd, log := startSmelt(t, "ingest", warc, "--out", out, "--workers", "2", "--shard-mb", "1")
			// Signal once the first shard is checkpointed, with the
			// extraction of the next pages under way (polling an event,
			// with no deadline: a child that exits ends the wait).
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			var err error
		wait:
			for {
				select {
				case err = <-exited:
					t.Fatalf("the child ended before its first checkpoint: %v\n%s", err, log)
				case <-time.After(20 * time.Millisecond):
				}
				if _, serr := os.Stat(filepath.Join(out, shards.CheckpointName)); serr == nil {
					break wait
				}
			}
			if err := cmd.Process.Signal(c.sig); err != nil {
				t.Fatal(err)
			}
			err = <-exited
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != c.code {
				t.Fatalf("exit: %v, want status %d\n%s", err, c.code, log)
			}
			// Stopped by itself (its context), not by the grace timer.
			if strings.Contains(log.String(), "did not stop within") {
				t.Errorf("the verb did not stop by itself:\n%s", log)
			}
			if !strings.Contains(log.String(), "resume") {
				t.Errorf("no word of resuming:\n%s", log)
			}
			if _, err := shards.ReadManifest(out); err == nil {
				t.Fatalf("an interrupted run wrote its manifest")
			}
			if o, err := runSmelt(t, "ingest", warc, "--out", out, "--workers", "1", "--shard-mb", "1"); err != nil {
				t.Fatalf("resume: %v\n%s", err, o)
			}
			testutil.SameTree(t, ref, out)
		})
	}
}

// H1 of issue 26: SIGTERM during a read stalled on a silent server (no
// idle timeout) stops smelt ingest by itself, at once, with status 143.
func TestIngestStopsOnSignalDuringStalledRead(t *testing.T) {
	sent := make(chan struct{}, 1)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodGet {
			return
		}
		w.Write(bytes.Repeat([]byte("x"), 100))
		w.(http.Flusher).Flush()
		select {
		case sent <- struct{}{}:
		default:
		}
		<-r.Context().Done() // then nothing, until the client hangs up
	}))
	defer s.Close()
	out := filepath.Join(t.TempDir(), "out")
	cmd, log := startSmelt(t, "ingest", s.URL+"/stalled.txt", "--out", out, "--idle-timeout", "0")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-sent:
	case err := <-exited:
		t.Fatalf("smelt ended before the stall: %v\n%s", err, log)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := <-exited
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 143 {
		t.Fatalf("exit: %v, want status 143\n%s", err, log)
	}
	if strings.Contains(log.String(), "did not stop within") {
		t.Fatalf("the stalled read held smelt until the grace ran out:\n%s", log)
	}
}
