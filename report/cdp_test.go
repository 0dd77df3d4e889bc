package report

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smelt-dev/smelt/internal/testutil"
	"golang.org/x/net/websocket"
)

// A small Chrome DevTools Protocol client for the end-to-end tests: it
// starts headless Chromium, opens one page and drives it with
// Page.navigate and Runtime.evaluate, collecting console errors,
// uncaught exceptions and network requests. (chromedp would do the same
// with four more modules; these tests need six methods.)

// chromePath finds Debian's chromium (or Google Chrome).
func chromePath() string {
	if p := os.Getenv("SMELT_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

type browser struct {
	// t is the test the browser reports failures to; subtests set it.
	t testing.TB
	// ctx ends when the test that started the browser ends, or just
	// before go test's -timeout: waits for Chromium have no fixed limit.
	ctx     context.Context
	profile string
	bws     *websocket.Conn // the browser target
	cmd     *exec.Cmd
	ws      *websocket.Conn
	mu      sync.Mutex
	id      int
	wait    map[int]chan cdpMsg
	// events
	errors   []string
	requests []string
	loaded   chan struct{}
	done     chan struct{}
}

type cdpMsg struct {
	ID     int             `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
	SessionID string `json:"sessionId,omitempty"`
}

var devtoolsRE = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

// startBrowser starts headless Chromium with a new empty profile, or skips
// the test when there is none.
func startBrowser(t testing.TB) *browser {
	t.Helper()
	path := chromePath()
	if path == "" {
		t.Skip("chromium not installed (apt-get install -y chromium): skipping the headless-browser tests")
	}
	profile, err := os.MkdirTemp("", "smelt-chromium-profile-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--disable-default-apps", "--mute-audio", "--hide-scrollbars", "--remote-allow-origins=*",
		"--user-data-dir="+profile, "--remote-debugging-port=0", "--window-size=1000,1200", "about:blank")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	b := &browser{t: t, ctx: testutil.Context(t), cmd: cmd, profile: profile, wait: map[int]chan cdpMsg{}, loaded: make(chan struct{}, 16), done: make(chan struct{})}
	t.Cleanup(b.close)
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			if m := devtoolsRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				urlc <- m[1]
				sent = true
			}
		}
	}()
	var wsURL string
	select {
	case wsURL = <-urlc:
	case <-testutil.Context(t).Done():
		t.Fatal("chromium did not print its DevTools address before the test's deadline")
	}
	// Open a page target and talk to it directly.
	host := strings.TrimPrefix(wsURL, "ws://")
	host = host[:strings.Index(host, "/")]
	bws, err := websocket.Dial(wsURL, "", "http://127.0.0.1/")
	if err != nil {
		t.Fatalf("devtools: %v", err)
	}
	var created struct {
		ID     int `json:"id"`
		Result struct {
			TargetID string `json:"targetId"`
		} `json:"result"`
	}
	if err := websocket.JSON.Send(bws, map[string]any{"id": 1, "method": "Target.createTarget", "params": map[string]any{"url": "about:blank"}}); err != nil {
		t.Fatal(err)
	}
	for created.ID != 1 {
		if err := websocket.JSON.Receive(bws, &created); err != nil {
			t.Fatal(err)
		}
	}
	b.bws = bws // kept to close the browser with Browser.close
	ws, err := websocket.Dial(fmt.Sprintf("ws://%s/devtools/page/%s", host, created.Result.TargetID), "", "http://127.0.0.1/")
	if err != nil {
		t.Fatalf("devtools page: %v", err)
	}
	ws.MaxPayloadBytes = 64 << 20
	b.ws = ws
	go b.readLoop()
	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable", "Network.enable"} {
		b.call(m, nil, nil)
	}
	return b
}

// close asks Chromium to quit (so that it reaps its own helper processes),
// and kills it if it has not within five seconds.
func (b *browser) close() {
	if b.ws != nil {
		b.ws.Close()
	}
	exited := make(chan struct{})
	go func() { b.cmd.Wait(); close(exited) }()
	if b.bws != nil {
		websocket.JSON.Send(b.bws, map[string]any{"id": 2, "method": "Browser.close"})
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		b.cmd.Process.Kill()
		<-exited
	}
	if b.bws != nil {
		b.bws.Close()
	}
	os.RemoveAll(b.profile)
}

func (b *browser) readLoop() {
	defer close(b.done)
	for {
		var m cdpMsg
		if err := websocket.JSON.Receive(b.ws, &m); err != nil {
			return
		}
		if m.ID != 0 {
			b.mu.Lock()
			c := b.wait[m.ID]
			delete(b.wait, m.ID)
			b.mu.Unlock()
			if c != nil {
				c <- m
			}
			continue
		}
		switch m.Method {
		case "Page.loadEventFired":
			select {
			case b.loaded <- struct{}{}:
			default:
			}
		case "Runtime.consoleAPICalled":
			var p struct {
				Type string `json:"type"`
				Args []struct {
					Value any `json:"value"`
				} `json:"args"`
			}
			json.Unmarshal(m.Params, &p)
			if p.Type == "error" || p.Type == "assert" {
				b.addError(fmt.Sprintf("console.%s %v", p.Type, p.Args))
			}
		case "Runtime.exceptionThrown":
			b.addError("exception: " + string(m.Params))
		case "Log.entryAdded":
			var p struct {
				Entry struct {
					Level, Text, URL string
				} `json:"entry"`
			}
			json.Unmarshal(m.Params, &p)
			if p.Entry.Level == "error" {
				b.addError(fmt.Sprintf("log: %s %s", p.Entry.Text, p.Entry.URL))
			}
		case "Network.requestWillBeSent":
			var p struct {
				Request struct {
					URL string `json:"url"`
				} `json:"request"`
			}
			json.Unmarshal(m.Params, &p)
			b.mu.Lock()
			b.requests = append(b.requests, p.Request.URL)
			b.mu.Unlock()
		}
	}
}

func (b *browser) addError(s string) {
	b.mu.Lock()
	b.errors = append(b.errors, s)
	b.mu.Unlock()
}

// takeErrors returns and clears the console errors seen so far.
func (b *browser) takeErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.errors
	b.errors = nil
	return e
}

// takeRequests returns and clears the URLs requested so far.
func (b *browser) takeRequests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.requests
	b.requests = nil
	return r
}

// call sends a command and decodes its result into out.
func (b *browser) call(method string, params any, out any) {
	b.t.Helper()
	b.mu.Lock()
	b.id++
	id := b.id
	c := make(chan cdpMsg, 1)
	b.wait[id] = c
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if err := websocket.JSON.Send(b.ws, msg); err != nil {
		b.t.Fatalf("%s: %v", method, err)
	}
	select {
	case m := <-c:
		if m.Error != nil {
			b.t.Fatalf("%s: %s", method, m.Error.Message)
		}
		if out != nil {
			if err := json.Unmarshal(m.Result, out); err != nil {
				b.t.Fatalf("%s: %v", method, err)
			}
		}
	case <-b.done:
		b.t.Fatalf("%s: browser connection closed", method)
	case <-b.ctx.Done():
		b.t.Fatalf("%s: no answer before the test's deadline", method)
	}
}

// navigate loads url and waits for its load event.
func (b *browser) navigate(url string) {
	b.t.Helper()
	for len(b.loaded) > 0 {
		<-b.loaded
	}
	var res struct {
		ErrorText string `json:"errorText"`
	}
	b.call("Page.navigate", map[string]any{"url": url}, &res)
	if res.ErrorText != "" {
		b.t.Fatalf("navigate %s: %s", url, res.ErrorText)
	}
	b.waitLoad()
}

func (b *browser) waitLoad() {
	b.t.Helper()
	select {
	case <-b.loaded:
	case <-b.ctx.Done():
		b.t.Fatal("page did not load before the test's deadline")
	}
}

// eval evaluates a JavaScript expression in the page and decodes its
// value into out.
func (b *browser) eval(expr string, out any) {
	b.t.Helper()
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	b.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res)
	if res.ExceptionDetails != nil {
		b.t.Fatalf("eval %s: %s", expr, res.ExceptionDetails.Text)
	}
	if out != nil {
		if err := json.Unmarshal(res.Result.Value, out); err != nil {
			b.t.Fatalf("eval %s: %v (value %s)", expr, err, res.Result.Value)
		}
	}
}

// clickAndWait clicks the element matching the CSS selector and waits for
// the page it leads to.
func (b *browser) clickAndWait(selector string) {
	b.t.Helper()
	for len(b.loaded) > 0 {
		<-b.loaded
	}
	var ok bool
	b.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false; e.click(); return true })()`, selector), &ok)
	if !ok {
		b.t.Fatalf("no element %s to click", selector)
	}
	b.waitLoad()
}

// clickText clicks the first element matching selector whose text starts
// with prefix, and waits for the page it leads to.
func (b *browser) clickText(selector, prefix string) {
	b.t.Helper()
	for len(b.loaded) > 0 {
		<-b.loaded
	}
	var ok bool
	b.eval(fmt.Sprintf(`(() => { const e = [...document.querySelectorAll(%q)].find(e => e.textContent.startsWith(%q)); if (!e) return false; e.click(); return true })()`, selector, prefix), &ok)
	if !ok {
		b.t.Fatalf("no %s with text %q to click", selector, prefix)
	}
	b.waitLoad()
}

// screenshot saves a width x height PNG of the top of the page.
func (b *browser) screenshot(path string, width, height int) {
	b.t.Helper()
	b.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}, nil)
	var res struct {
		Data string `json:"data"`
	}
	b.call("Page.captureScreenshot", map[string]any{"format": "png", "clip": map[string]any{"x": 0, "y": 0, "width": width, "height": height, "scale": 1}}, &res)
	data, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.t.Fatal(err)
	}
}
