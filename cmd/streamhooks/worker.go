package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/streamhooks/streamhooks/activities"
	"github.com/streamhooks/streamhooks/api"
	"github.com/streamhooks/streamhooks/egress"
	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/service"
	"github.com/streamhooks/streamhooks/worker"
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
		Store: store, Guard: egress.NewGuard(d.Allowed), Schedule: d.Schedule, AttemptTimeout: d.AttemptTimeout,
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
func newStarter(ctx context.Context, c client.Client, cfg *config, log *slog.Logger) *service.Starter {
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

// workerRole is what runWorker needs.
type workerRole struct {
	client   client.Client
	acts     *activities.Activities
	starter  *service.Starter
	store    *models.Store
	delivery deliveryConfig
	recon    reconcileConfig
	reg      *prometheus.Registry
	log      *slog.Logger
	// outbox, when set, is the process's outbox, already running (dev);
	// otherwise the worker runs its own scan for events nobody started.
	outbox *service.Outbox
}

// runWorker runs the delivery worker, the outbox scan and the reconciler
// until ctx ends, then stops the worker gracefully (in-flight attempts
// finish or are retried by Temporal on another worker).
func runWorker(ctx context.Context, r workerRole) error {
	w := worker.New(r.client, r.acts, worker.Options{TaskQueue: r.starter.TaskQueue})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	var wg sync.WaitGroup
	if r.outbox == nil {
		ob := service.NewOutbox(r.store, r.starter, r.log, r.reg)
		wg.Add(1)
		go func() { defer wg.Done(); ob.Run(ctx) }()
	}
	rec := &service.Reconciler{Store: r.store, Workflows: r.starter, Logger: r.log,
		Interval: r.recon.Interval, Grace: r.recon.Grace, Resumed: service.NewResumedCounter(r.reg)}
	wg.Add(1)
	go func() { defer wg.Done(); rec.Run(ctx) }()
	r.log.Info("worker running", "taskQueue", r.starter.TaskQueue, "retrySchedule", fmt.Sprint(r.delivery.Schedule),
		"attemptTimeout", r.delivery.AttemptTimeout.String(), "allowedTargets", fmt.Sprint(r.delivery.Allowed))
	<-ctx.Done()
	w.Stop()
	wg.Wait()
	r.log.Info("worker stopped")
	return nil
}

// temporalReady is the readiness check of a Temporal connection.
func temporalReady(c client.Client) api.ReadyCheck {
	return api.ReadyCheck{Name: "temporal", Check: func(ctx context.Context) error {
		_, err := c.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err
	}}
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
	recon, err := cfg.reconcile()
	if err != nil {
		return err
	}
	reg := newRegistry()
	acts := newActivities(store, d, reg, log)
	if cfg.MetricsAddr != "" {
		ln, err := listen("metrics", cfg.MetricsAddr)
		if err != nil {
			return err
		}
		// The worker needs both the database and Temporal.
		tr := temporalReady(c)
		tr.Required = true
		checks := []api.ReadyCheck{{Name: "database", Required: true, Check: store.Ping}, tr}
		go func() { _ = serveHTTP(ctx, ln, workerHTTP(reg, checks), log) }()
	}
	return runWorker(ctx, workerRole{client: c, acts: acts, starter: newStarter(ctx, c, &cfg, log), store: store,
		delivery: d, recon: recon, reg: reg, log: log})
}

// workerHTTP serves the worker's /metrics and /readyz.
func workerHTTP(reg *prometheus.Registry, checks []api.ReadyCheck) http.Handler {
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
