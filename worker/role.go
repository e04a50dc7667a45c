package worker

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/streamhooks/streamhooks/activities"
	"github.com/streamhooks/streamhooks/egress"
	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/service"
)

// Config is everything a delivery worker is assembled from. The worker
// role, the dev mode and the bench all go through Assemble, so their
// workers differ only in these values.
type Config struct {
	Client client.Client
	Store  *models.Store
	// Allowed are the CIDRs deliveries may reach despite the egress guard.
	Allowed        []netip.Prefix
	Schedule       []time.Duration // the activities' default when empty
	AttemptTimeout time.Duration   // the activities' default when zero
	DisableAfter   time.Duration   // 0 never disables
	// Registry receives the delivery metrics; nil records none.
	Registry  *prometheus.Registry
	UserAgent string
	Logger    *slog.Logger
	Options   Options
}

// Assembled is a delivery worker, not yet started, the activities it runs
// (the dev mode's API sends its test deliveries with the same ones) and the
// Config it was assembled from.
type Assembled struct {
	Activities *activities.Activities
	Worker     worker.Worker
	Config     Config
}

// NewActivities builds the delivery activities of cfg. The api role uses
// it alone, for test sends; Assemble uses it for workers.
func NewActivities(cfg Config) *activities.Activities {
	var metrics *activities.Metrics
	if cfg.Registry != nil {
		metrics = activities.NewMetrics(cfg.Registry)
	}
	return activities.New(activities.Config{
		Store: cfg.Store, Guard: egress.NewGuard(cfg.Allowed), Schedule: cfg.Schedule, AttemptTimeout: cfg.AttemptTimeout,
		DisableAfter: cfg.DisableAfter, Metrics: metrics, UserAgent: cfg.UserAgent, Logger: cfg.Logger,
	})
}

// Assemble builds the activities of cfg and a worker with every workflow
// and activity registered. The caller starts and stops the worker.
func Assemble(cfg Config) Assembled {
	acts := NewActivities(cfg)
	return Assembled{Activities: acts, Worker: New(cfg.Client, acts, cfg.Options), Config: cfg}
}

// RunInput is what Run needs.
type RunInput struct {
	Worker  Assembled
	Starter *service.Starter
	Store   *models.Store
	// ReconcileInterval and ReconcileGrace pace the reconciler (the
	// service defaults when zero).
	ReconcileInterval time.Duration
	ReconcileGrace    time.Duration
	Registry          *prometheus.Registry
	Logger            *slog.Logger
	// Outbox, when set, is the process's outbox, already running (dev);
	// otherwise the worker runs its own scan for events nobody started.
	Outbox *service.Outbox
	// Retention is STREAMHOOKS_RETENTION: the worker keeps the retention
	// schedule pointed at it (DESIGN §10); 0 leaves the schedule alone.
	Retention time.Duration
}

// Run starts the worker and runs it with the outbox scan and the reconciler
// until ctx ends, then stops the worker gracefully (in-flight attempts
// finish or are retried by Temporal on another worker).
func Run(ctx context.Context, in RunInput) error {
	if err := in.Worker.Worker.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	var wg sync.WaitGroup
	if in.Outbox == nil {
		ob := service.NewOutbox(in.Store, in.Starter, in.Logger, in.Registry)
		wg.Add(1)
		go func() { defer wg.Done(); ob.Run(ctx) }()
	}
	rec := &service.Reconciler{Store: in.Store, Workflows: in.Starter, Logger: in.Logger,
		Interval: in.ReconcileInterval, Grace: in.ReconcileGrace, Resumed: service.NewResumedCounter(in.Registry)}
	wg.Add(1)
	go func() { defer wg.Done(); rec.Run(ctx) }()
	if in.Retention > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); ensureRetention(ctx, in) }()
	}
	d := in.Worker.Config
	in.Logger.Info("worker running", "taskQueue", in.Starter.TaskQueue, "retrySchedule", fmt.Sprint(d.Schedule),
		"attemptTimeout", d.AttemptTimeout.String(), "allowedTargets", fmt.Sprint(d.Allowed))
	<-ctx.Done()
	in.Worker.Worker.Stop()
	wg.Wait()
	in.Logger.Info("worker stopped")
	return nil
}

// ensureRetention sets up the retention schedule, trying again every 30 s
// while Temporal is away: a worker starts without it and purges later.
func ensureRetention(ctx context.Context, in RunInput) {
	for {
		err := in.Starter.EnsureRetentionSchedule(ctx, in.Retention)
		if err == nil {
			in.Logger.Info("retention schedule set", "retention", in.Retention.String())
			return
		}
		in.Logger.Warn("retention schedule not set yet", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(30 * time.Second):
		}
	}
}
