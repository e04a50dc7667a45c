package activities

import (
	"net"
	"net/http"
	"time"
)

// NewHTTPClient returns the one shared client deliveries use. It dials only
// addresses the guard admits, ignores proxy environment variables (a proxy
// would bypass the guard), never follows redirects, does not decompress
// (so a gzip bomb stays a small, capped body), and keeps connections alive
// per endpoint for throughput.
func NewHTTPClient(g *Guard, attemptTimeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: min(attemptTimeout, 10*time.Second), KeepAlive: 30 * time.Second, Control: g.control}
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
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
