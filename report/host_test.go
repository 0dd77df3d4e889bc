package report

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// rawGet sends GET path to addr over a fresh TCP connection with the Host
// header given, as a browser does after DNS rebinding (it connects to the
// loopback address but names the attacker's host), and returns the status.
func rawGet(t *testing.T, addr, host, path string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nConnection: close\r\n", path)
	if host != "" {
		req += "Host: " + host + "\r\n"
	}
	req += "\r\n"
	if host == "" {
		// HTTP/1.1 requires Host; HTTP/1.0 lets a client leave it out.
		req = strings.Replace(req, "HTTP/1.1", "HTTP/1.0", 1)
	}
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("Host %q: %v", host, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestInspectHostCheck: inspect answers only requests that name a loopback
// host or the address it listens on, so a web page whose domain a DNS
// rebinding pointed at 127.0.0.1 cannot read the documents through the
// user's browser.
func TestInspectHostCheck(t *testing.T) {
	_, _, srv := inspectServer(t)
	u, _ := url.Parse(srv.URL)
	addr := u.Host
	_, port, _ := net.SplitHostPort(addr)
	for _, c := range []struct {
		host string
		code int
	}{
		{addr, http.StatusOK},
		{"localhost:" + port, http.StatusOK},
		{"LocalHost:" + port, http.StatusOK},
		{"localhost.:" + port, http.StatusOK},
		{"127.0.0.1", http.StatusOK},
		{"127.1.2.3:" + port, http.StatusOK},
		{"[::1]:" + port, http.StatusOK},
		// DNS rebinding: the attacker's name, resolved to 127.0.0.1.
		{"rebind.attacker.example:" + port, http.StatusMisdirectedRequest},
		{"attacker.example", http.StatusMisdirectedRequest},
		{"localhost.attacker.example:" + port, http.StatusMisdirectedRequest},
		{"127.0.0.1.nip.io:" + port, http.StatusMisdirectedRequest},
		{"10.1.2.3:" + port, http.StatusMisdirectedRequest},
		{"", http.StatusMisdirectedRequest},
	} {
		for _, path := range []string{"/", "/docs?step=filter", "/report"} {
			if got := rawGet(t, addr, c.host, path); got != c.code {
				t.Errorf("Host %q %s: status %d, want %d", c.host, path, got, c.code)
			}
		}
	}
}

// TestInspectAllowHost: the address inspect listens on, and names given
// with AllowHost, are accepted besides the loopback names.
func TestInspectAllowHost(t *testing.T) {
	f := getFixture(t)
	run, err := Load(f.Dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(t.Context(), run)
	s.AllowHost("192.0.2.7")
	s.AllowHost("Smelt.Lan")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s}
	go hs.Serve(ln)
	defer hs.Close()
	addr := ln.Addr().String()
	for _, c := range []struct {
		host string
		code int
	}{
		{"192.0.2.7:8080", http.StatusOK},
		{"smelt.lan:8080", http.StatusOK},
		{"192.0.2.8:8080", http.StatusMisdirectedRequest},
		{"other.lan:8080", http.StatusMisdirectedRequest},
	} {
		if got := rawGet(t, addr, c.host, "/"); got != c.code {
			t.Errorf("Host %q: status %d, want %d", c.host, got, c.code)
		}
	}
}
