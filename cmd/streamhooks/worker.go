package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/streamhooks/streamhooks/activities"
	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/worker"
	"github.com/streamhooks/streamhooks/workflows"
)

// temporalOptions are the client options of every role.
func (c *config) temporalOptions(log *slog.Logger) client.Options {
	return client.Options{
		HostPort:  c.TemporalAddress,
		Namespace: c.TemporalNamespace,
		Logger:    tlog.NewStructuredLogger(log.With("component", "temporal")),
	}
}

// dialTemporal connects and checks the server answers, failing fast with a
// message that names the address.
func dialTemporal(ctx context.Context, cfg *config, log *slog.Logger) (client.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := client.DialContext(dctx, cfg.temporalOptions(log))
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", cfg.TemporalAddress, cfg.TemporalNamespace, err)
	}
	return c, nil
}

// newActivities builds the delivery activities from validated settings.
func newActivities(store *models.Store, d deliveryConfig, reg *prometheus.Registry, log *slog.Logger) *activities.Activities {
	return activities.New(activities.Config{
		Store: store, Guard: activities.NewGuard(d.Allowed), Schedule: d.Schedule, AttemptTimeout: d.AttemptTimeout,
		DisableAfter: d.DisableAfter, Metrics: activities.NewMetrics(reg), UserAgent: "streamhooks/" + version, Logger: log,
	})
}

// newRegistry returns a metrics registry with the Go runtime and process
// collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// newStarter returns a workflow starter, with search attributes when they
// could be registered in the namespace (otherwise starts would fail).
func newStarter(ctx context.Context, c client.Client, cfg *config, log *slog.Logger) *workflows.Starter {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st := &workflows.Starter{Client: c, TaskQueue: cfg.TaskQueue}
	if err := workflows.EnsureSearchAttributes(sctx, c, cfg.TemporalNamespace); err != nil {
		log.Warn("search attributes unavailable; workflows start without them", "namespace", cfg.TemporalNamespace, "error", err)
		return st
	}
	st.SearchAttributes = true
	return st
}

// runWorker runs the delivery worker and the outbox relay until ctx ends,
// then stops the worker gracefully (in-flight attempts finish or are
// retried by Temporal on another worker).
func runWorker(ctx context.Context, c client.Client, acts *activities.Activities, starter *workflows.Starter, store *models.Store, d deliveryConfig, log *slog.Logger) error {
	w := worker.New(c, acts, worker.Options{TaskQueue: starter.TaskQueue})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	relay := &worker.Relay{Store: store, Starter: starter, Logger: log}
	done := make(chan struct{})
	go func() { defer close(done); relay.Run(ctx) }()
	log.Info("worker running", "taskQueue", starter.TaskQueue, "retrySchedule", fmt.Sprint(d.Schedule),
		"attemptTimeout", d.AttemptTimeout.String(), "allowedTargets", fmt.Sprint(d.Allowed))
	<-ctx.Done()
	w.Stop()
	<-done
	log.Info("worker stopped")
	return nil
}

func cmdWorker(ctx context.Context, args []string, stderr io.Writer) error {
	cfg := loadConfig()
	fs := newFlags("worker", "worker", stderr)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	store, d, log, err := cfg.productionRole(ctx, "worker", stderr)
	if err != nil {
		return err
	}
	defer store.Close()
	c, err := dialTemporal(ctx, &cfg, log)
	if err != nil {
		return err
	}
	defer c.Close()
	reg := newRegistry()
	acts := newActivities(store, d, reg, log)
	if cfg.MetricsAddr != "" {
		ln, err := listen("metrics", cfg.MetricsAddr)
		if err != nil {
			return err
		}
		go func() { _ = serveHTTP(ctx, ln, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), log) }()
	}
	return runWorker(ctx, c, acts, newStarter(ctx, c, &cfg, log), store, d, log)
}

// productionRole validates what the api and worker roles share and opens
// their store: DATABASE_URL, the delivery settings, the logger, an
// up-to-date schema and the secret key. The caller closes the store.
func (c *config) productionRole(ctx context.Context, role string, stderr io.Writer) (*models.Store, deliveryConfig, *slog.Logger, error) {
	if c.DatabaseURL == "" {
		return nil, deliveryConfig{}, nil, fmt.Errorf("%w: DATABASE_URL is required for the %s role (postgres://...)", errUsage, role)
	}
	d, err := c.delivery()
	if err != nil {
		return nil, d, nil, err
	}
	log, err := newLogger(stderr, c.LogLevel, false)
	if err != nil {
		return nil, d, nil, err
	}
	store, err := openStore(ctx, c, false)
	if err != nil {
		return nil, d, nil, err
	}
	if err := c.useSecretKey(store, ""); err != nil {
		_ = store.Close()
		return nil, d, nil, err
	}
	return store, d, log, nil
}
