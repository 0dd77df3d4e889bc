package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
)

// MaxRedirects bounds the redirects followed for one request.
const MaxRedirects = 10

// ErrRedirect is returned (wrapped) for a redirect the policy refuses.
var ErrRedirect = errors.New("redirect refused")

// ErrForbiddenAddress is returned (wrapped) when a connection would go to a
// loopback, link-local, private or unspecified address of a host the user
// did not name (a redirect, or a name that resolves there).
var ErrForbiddenAddress = errors.New("connection to a loopback, link-local or private address refused")

// namedKey carries, in a request's context, the host:port the user named
// (the input URL's), which may be connected to whatever address it has.
type namedKey struct{}

// withNamed returns ctx marked with the host of u as named by the user.
func withNamed(ctx context.Context, u string) context.Context {
	pu, err := url.Parse(u)
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, namedKey{}, hostPort(pu))
}

// hostPort is u's host:port in lower case, with the scheme's default port.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if strings.EqualFold(u.Scheme, "https") {
			port = "443"
		}
	}
	return strings.ToLower(net.JoinHostPort(u.Hostname(), port))
}

// checkRedirect is HTTPClient's redirect policy: the same scheme and
// host:port as the first request unless the request context's Policy
// allows other hosts (AllowRedirectHosts), never a
// downgrade from https to http, at most MaxRedirects. It runs before the
// redirected request is made.
func checkRedirect(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	if len(via) > MaxRedirects {
		return fmt.Errorf("%w: more than %d redirects from %s", ErrRedirect, MaxRedirects, Redact(first.String()))
	}
	prev := via[len(via)-1].URL
	to := req.URL
	switch {
	case strings.EqualFold(prev.Scheme, "https") && !strings.EqualFold(to.Scheme, "https"):
		return fmt.Errorf("%w: %s redirects from https to %s (%s)", ErrRedirect, Redact(first.String()), to.Scheme, Redact(to.String()))
	case PolicyOf(req.Context()).AllowRedirectHosts:
		return nil
	case !strings.EqualFold(to.Scheme, first.Scheme) || hostPort(to) != hostPort(first):
		return fmt.Errorf("%w: %s redirects to another host (%s); only redirects to the same scheme and host are followed (smelt ingest --allow-redirects follows others, still never to loopback, link-local or private addresses)",
			ErrRedirect, Redact(first.String()), Redact(to.String()))
	}
	return nil
}

// guardedDial connects like a net.Dialer, but refuses loopback,
// link-local, private and unspecified addresses unless the host:port being
// dialled is the one the user named (or a proxy the environment names).
// The check runs on the resolved address, just before the connection is
// made, so a name that resolves to such an address is caught too.
func guardedDial(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		named, ok := ctx.Value(namedKey{}).(string)
		if !ok || strings.EqualFold(addr, named) || isProxy(addr) {
			return d.DialContext(ctx, network, addr)
		}
		g := *d
		g.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip := net.ParseIP(host)
			if ip == nil || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsPrivate() ||
				ip.IsUnspecified() || ip.IsInterfaceLocalMulticast() {
				return fmt.Errorf("%w: %s (%s) was not named as an input", ErrForbiddenAddress, addr, address)
			}
			return nil
		}
		return g.DialContext(ctx, network, addr)
	}
}

// isProxy reports whether addr is the proxy the environment names.
func isProxy(addr string) bool {
	for _, v := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"} {
		raw := os.Getenv(v)
		if raw == "" {
			continue
		}
		if !strings.Contains(raw, "://") {
			raw = "http://" + raw
		}
		if u, err := url.Parse(raw); err == nil && hostPort(u) == strings.ToLower(addr) {
			return true
		}
	}
	return false
}

// newHTTPClient is the client for http(s) inputs.
func newHTTPClient() *http.Client {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		CheckRedirect: checkRedirect,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           guardedDial(d),
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   30 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			// Ask for identity encoding: a transparently gunzipped body
			// would not be the object's bytes, and ranges would not line
			// up.
			DisableCompression: true,
		}}
}
