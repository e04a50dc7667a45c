package activities

import (
	"context"
	"errors"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/streamhooks/streamhooks/egress"
)

// BenchmarkClassifyError measures mapping transport errors to error
// classes, done once per failed attempt.
func BenchmarkClassifyError(b *testing.B) {
	errs := []error{
		&url.Error{Op: "Post", URL: "https://x", Err: &net.DNSError{Name: "x", Err: "no such host"}},
		&url.Error{Op: "Post", URL: "https://x", Err: context.DeadlineExceeded},
		&url.Error{Op: "Post", URL: "https://x", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}},
		&url.Error{Op: "Post", URL: "https://x", Err: &egress.BlockedError{Reason: "loopback"}},
	}
	for b.Loop() {
		for _, err := range errs {
			classifyError(err)
		}
	}
}

func BenchmarkParseRetryAfter(b *testing.B) {
	now := time.Now()
	for b.Loop() {
		parseRetryAfter("120", now)
		parseRetryAfter("Wed, 21 Oct 2026 07:28:00 GMT", now)
	}
}
