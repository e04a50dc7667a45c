package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/streamhooks/streamhooks/internal/roles"
	"github.com/streamhooks/streamhooks/signature"
)

// cmdReceive runs a loopback test receiver: it prints every delivery,
// checks its Standard Webhooks signature and x-streams-token against
// --secret, and answers --status (after --fail 503s), so the whole flow can
// be watched from a terminal.
func cmdReceive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("receive", "receive [--addr 127.0.0.1:9000] [--secret S] [--status 200] [--fail N]", stderr)
	addr := fs.String("addr", "127.0.0.1:9000", "listen address")
	secret := fs.String("secret", "", "the webhook's secret_token, to verify signatures")
	status := fs.Int("status", http.StatusOK, "status to answer")
	fail := fs.Int("fail", 0, "answer 503 to the first N requests (to watch retries)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	ln, err := roles.Listen("receiver", *addr)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	n := 0
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		mu.Lock()
		defer mu.Unlock()
		n++
		code := *status
		if n <= *fail {
			code = http.StatusServiceUnavailable
		}
		fmt.Fprintf(stdout, "%s #%d %s %s webhook-id=%s webhook-timestamp=%s signature=%s -> %d\n  %s\n",
			time.Now().Format(time.TimeOnly), n, r.Method, r.URL.Path, r.Header.Get("webhook-id"),
			r.Header.Get("webhook-timestamp"), verdict(r.Header, body, *secret), code, body)
		w.WriteHeader(code)
	})
	fmt.Fprintf(stdout, "receiving on http://%s (Ctrl-C stops)\n", ln.Addr())
	return roles.ServeHTTP(ctx, ln, h, slog.New(slog.NewTextHandler(stderr, nil)))
}

// verdict checks the signature and the TPStreams token header.
func verdict(h http.Header, body []byte, secret string) string {
	if secret == "" {
		return "unchecked (no --secret)"
	}
	ts, err := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
	if err != nil {
		return "INVALID (bad timestamp)"
	}
	if !signature.Verify([]byte(secret), h.Get("webhook-id"), ts, body, h.Get("webhook-signature")) || h.Get("x-streams-token") != secret {
		return "INVALID"
	}
	return "valid"
}
