package egress

import (
	"net"
	"net/http"
	"time"
)

// NewClient returns the one shared client deliveries use. It resolves
// each host once with r (net.DefaultResolver when nil), refuses the host
// when the guard refuses any of its addresses, and connects to the checked
// addresses themselves, so a name cannot re-resolve to another address
// between the check and the connection. It ignores proxy environment
// variables (a proxy would bypass the guard), never follows redirects, does
// not decompress (so a gzip bomb stays a small, capped body), and keeps
// connections alive per endpoint for throughput.
func NewClient(g *Guard, r Resolver, attemptTimeout time.Duration) *http.Client {
	if g == nil {
		g = NewGuard(nil)
	}
	if r == nil {
		r = net.DefaultResolver
	}
	dial := &guardedDialer{guard: g, resolver: r,
		dialer: &net.Dialer{Timeout: min(attemptTimeout, 10*time.Second), KeepAlive: 30 * time.Second, Control: g.control}}
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            dial.DialContext,
		ForceAttemptHTTP2:      true,
		DisableCompression:     true,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    64,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  attemptTimeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   attemptTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
