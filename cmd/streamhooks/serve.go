package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/streamhooks/streamhooks/api"
	"github.com/streamhooks/streamhooks/egress"
	"github.com/streamhooks/streamhooks/service"
)

// shutdownTimeout bounds how long in-flight requests may finish on stop.
const shutdownTimeout = 10 * time.Second

// newLogger returns the process logger: JSON lines for the production
// roles, readable text lines for a person (dev).
func newLogger(w io.Writer, level string, text bool) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToLower(level))); err != nil {
		return nil, fmt.Errorf("%w: log level %q: want debug, info, warn or error", errUsage, level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if text {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

// listen binds addr now, so a port in use is a clear error at start rather
// than a log line later.
func listen(what, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s cannot listen on %s: %w", what, addr, err)
	}
	return ln, nil
}

// serveHTTP serves h on ln until ctx ends, then shuts down gracefully.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down HTTP server: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func cmdAPI(ctx context.Context, args []string, stderr io.Writer) error {
	cfg := loadConfig()
	fs := newFlags("api", "api [--addr HOST:PORT]", stderr)
	fs.StringVar(&cfg.APIAddr, "addr", envOr(envAPIAddr, ":8080"), "listen address ("+envAPIAddr+")")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	store, d, log, err := cfg.productionRole(ctx, "api", stderr)
	if err != nil {
		return err
	}
	defer store.Close()
	ln, err := listen("API", cfg.APIAddr)
	if err != nil {
		return err
	}
	// A lazy client lets the API start (and accept events) while Temporal
	// is down; the outbox starts their workflows once it is back.
	c, err := client.NewLazyClient(cfg.temporalOptions(log))
	if err != nil {
		return fmt.Errorf("temporal client: %w", err)
	}
	defer c.Close()
	log.Info("api listening", "addr", ln.Addr().String(), "version", version, "temporal", cfg.TemporalAddress)
	reg := newRegistry()
	starter := newStarter(ctx, c, &cfg, log)
	outbox := service.NewOutbox(store, starter, log, reg)
	go outbox.Run(ctx)
	h := api.New(api.Config{
		Store: store, Workflows: starter, Outbox: outbox, Ready: []api.ReadyCheck{temporalReady(c)},
		Attempter: newActivities(store, d, reg, log), Registry: reg, Logger: log, Guard: egress.NewGuard(d.Allowed),
	})
	return serveHTTP(ctx, ln, h, log)
}
