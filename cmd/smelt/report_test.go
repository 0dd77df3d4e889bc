package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
)

// reportStageDir runs a small document stage with shards.RunDocStage: it
// drops documents holding markup.
func reportStageDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	os.MkdirAll(in, 0o755)
	w := shards.NewDocWriter(in, shards.DocWriterOptions{})
	for i, text := range []string{"A plain page about rivers and the sea.", "Hello <script>alert(1)</script> there.", "Another plain page."} {
		if err := w.Write(&shards.Document{ID: "doc-" + string(rune('a'+i)), Source: "web", Lang: "en", Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := shards.WriteManifest(in, &shards.Manifest{Kind: shards.KindDocuments, Stage: "ingest", Shards: w.Shards(), Totals: shards.SumShards(w.Shards())}); err != nil {
		t.Fatal(err)
	}
	_, err := shards.RunDocStage(context.Background(), shards.DocStageConfig{Stage: "markup", Inputs: []string{in}, Out: out, Workers: 1,
		Process: func(d *shards.Document) (*shards.Document, error) {
			if strings.Contains(d.Text, "<script") {
				d.Drop = &shards.Drop{Reason: "markup/script", Value: "1"}
			}
			return d, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReportCommand(t *testing.T) {
	dir := reportStageDir(t)
	out := filepath.Join(t.TempDir(), "report.html")
	root := newRootCmd()
	root.SetArgs([]string{"report", dir, "--out", out})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	page := string(data)
	if !strings.Contains(page, "markup/script") || strings.Contains(page, "<script>alert") || !strings.Contains(page, "&lt;script&gt;alert(1)") {
		t.Errorf("report does not show the drop with its escaped example")
	}
	root = newRootCmd()
	root.SetArgs([]string{"report", dir})
	if err := root.ExecuteContext(context.Background()); err == nil || !strings.Contains(err.Error(), "--out") {
		t.Errorf("report without --out: %v", err)
	}
}

func TestInspectCommand(t *testing.T) {
	dir := reportStageDir(t)
	base, stop := startInspect(t, dir, "--allow-host", "smelt.lan")
	resp, err := http.Get(base + "docs?step=out&set=dropped")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "markup/script") {
		t.Errorf("dropped listing: %s %.300s", resp.Status, body)
	}
	// A DNS-rebinding request: it reaches 127.0.0.1 but names another host.
	for host, want := range map[string]int{"rebind.attacker.example": 421, "smelt.lan:8080": 200, "localhost": 200, "smelt.lan.attacker.example": 421} {
		req, _ := http.NewRequest("GET", base+"docs?step=out&set=dropped", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %s, want %d", host, resp.Status, want)
		}
		if want == 421 && strings.Contains(string(body), "markup/script") {
			t.Errorf("Host %s: the refusal shows documents", host)
		}
	}
	if err := stop(); err != nil {
		t.Error(err)
	}
}

// startInspect runs smelt inspect on dir on a free port (with any extra
// flags) and returns its address; stop cancels it and reports how it ended.
func startInspect(t *testing.T, dir string, flags ...string) (base string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var out testutil.SyncBuffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetArgs(append([]string{"inspect", dir, "--addr", "127.0.0.1:0"}, flags...))
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	re := regexp.MustCompile(`http://127\.0\.0\.1:\d+/`)
	for deadline := time.Now().Add(10 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		base = re.FindString(out.String())
	}
	if base == "" {
		t.Fatalf("inspect printed no address: %q", out.String())
	}
	return base, func() error {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("inspect after cancel: %w", err)
			}
			return nil
		case <-testutil.Context(t).Done():
			return fmt.Errorf("inspect did not stop when its context was cancelled")
		}
	}
}

func TestListenHosts(t *testing.T) {
	if got := listenHosts(&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 80}); len(got) != 1 || got[0] != "192.0.2.1" {
		t.Errorf("specific address: %v", got)
	}
	all := listenHosts(&net.TCPAddr{IP: net.IPv4zero, Port: 80})
	if !slices.Contains(all, "127.0.0.1") {
		t.Errorf("0.0.0.0 does not include the loopback interface's address: %v", all)
	}
}
