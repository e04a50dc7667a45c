// Package roles holds what the roles of the binary (api, worker, dev,
// bench and the admin commands) share once their settings are validated:
// opening the store, the Temporal client and workflow starter, metrics,
// readiness and HTTP serving. cmd/streamhooks wires them per command.
package roles

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"

	"github.com/streamhooks/streamhooks/api"
	"github.com/streamhooks/streamhooks/internal/config"
	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/service"
)

// shutdownTimeout bounds how long in-flight requests may finish on stop.
const shutdownTimeout = 10 * time.Second

// Listen binds addr now, so a port in use is a clear error at start rather
// than a log line later.
func Listen(what, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s cannot listen on %s: %w", what, addr, err)
	}
	return ln, nil
}

// ServeHTTP serves h on ln until ctx ends, then shuts down gracefully.
func ServeHTTP(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
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

// OpenStore opens the configured database. With migrate it also applies
// pending migrations (admin commands and the dev mode); production roles
// instead refuse to start on an outdated schema.
func OpenStore(ctx context.Context, cfg *config.Config, migrate bool) (*models.Store, error) {
	dsn, err := cfg.DatabaseURLOrDev()
	if err != nil {
		return nil, err
	}
	store, err := models.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if migrate {
		if _, err := store.Migrate(ctx); err != nil {
			_ = store.Close()
			return nil, err
		}
		return store, nil
	}
	pending, err := store.PendingMigrations(ctx)
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	if len(pending) > 0 {
		_ = store.Close()
		return nil, fmt.Errorf("the database schema is out of date (%d migrations pending): run 'streamhooks migrate' first", len(pending))
	}
	return store, nil
}

// Production validates what the api and worker roles share and opens
// their store: DATABASE_URL, the delivery settings, the logger, an
// up-to-date schema and the secret key. The caller closes the store.
func Production(ctx context.Context, cfg *config.Config, role string, stderr io.Writer) (*models.Store, config.Delivery, *slog.Logger, error) {
	d, log, err := cfg.Production(role, stderr)
	if err != nil {
		return nil, d, nil, err
	}
	store, err := OpenStore(ctx, cfg, false)
	if err != nil {
		return nil, d, nil, err
	}
	if err := cfg.UseSecretKey(store, ""); err != nil {
		_ = store.Close()
		return nil, d, nil, err
	}
	return store, d, log, nil
}

// DialTemporal connects and checks the server answers, failing fast with a
// message that names the address.
func DialTemporal(ctx context.Context, cfg *config.Config, log *slog.Logger) (client.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := client.DialContext(dctx, cfg.TemporalOptions(log))
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", cfg.TemporalAddress, cfg.TemporalNamespace, err)
	}
	return c, nil
}

// NewRegistry returns a metrics registry with the Go runtime and process
// collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// NewStarter returns a workflow starter, with search attributes when they
// could be registered in the namespace (otherwise starts would fail).
func NewStarter(ctx context.Context, c client.Client, cfg *config.Config, log *slog.Logger) *service.Starter {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st := &service.Starter{Client: c, TaskQueue: cfg.TaskQueue}
	if err := service.EnsureSearchAttributes(sctx, c, cfg.TemporalNamespace); err != nil {
		log.Warn("search attributes unavailable; workflows start without them", "namespace", cfg.TemporalNamespace, "error", err)
		return st
	}
	st.SearchAttributes = true
	return st
}

// TemporalReady is the readiness check of a Temporal connection.
func TemporalReady(c client.Client) api.ReadyCheck {
	return api.ReadyCheck{Name: "temporal", Check: func(ctx context.Context) error {
		_, err := c.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err
	}}
}

// WorkerHTTP serves the worker's /metrics and /readyz.
func WorkerHTTP(reg *prometheus.Registry, checks []api.ReadyCheck) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		code, body := api.Readiness(r.Context(), checks)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(body)
	})
	return mux
}
