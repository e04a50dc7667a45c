package main

import (
	"context"
	"io"

	"github.com/streamhooks/streamhooks/api"
	"github.com/streamhooks/streamhooks/internal/config"
	"github.com/streamhooks/streamhooks/internal/roles"
	"github.com/streamhooks/streamhooks/worker"
)

// workerConfig is the worker assembly recipe of the worker role and the
// dev mode, from validated delivery settings.
func workerConfig(base worker.Config, d config.Delivery) worker.Config {
	base.Allowed, base.Schedule, base.AttemptTimeout, base.DisableAfter = d.Allowed, d.Schedule, d.AttemptTimeout, d.DisableAfter
	base.UserAgent = "streamhooks/" + version
	return base
}

func cmdWorker(ctx context.Context, cfg config.Config, args []string, stderr io.Writer) error {
	fs := newFlags("worker", "worker", stderr)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	store, d, log, err := roles.Production(ctx, &cfg, "worker", stderr)
	if err != nil {
		return err
	}
	defer store.Close()
	c, err := roles.DialTemporal(ctx, &cfg, log)
	if err != nil {
		return err
	}
	defer c.Close()
	recon, err := cfg.Reconcile()
	if err != nil {
		return err
	}
	retention, err := cfg.RetentionPeriod()
	if err != nil {
		return err
	}
	reg := roles.NewRegistry()
	w := worker.Assemble(workerConfig(worker.Config{Client: c, Store: store, Registry: reg, Logger: log,
		Options: worker.Options{TaskQueue: cfg.TaskQueue}}, d))
	if cfg.MetricsAddr != "" {
		ln, err := roles.Listen("metrics", cfg.MetricsAddr)
		if err != nil {
			return err
		}
		// The worker needs both the database and Temporal.
		tr := roles.TemporalReady(c)
		tr.Required = true
		checks := []api.ReadyCheck{{Name: "database", Required: true, Check: store.Ping}, tr}
		go func() { _ = roles.ServeHTTP(ctx, ln, roles.WorkerHTTP(reg, checks), log) }()
	}
	return worker.Run(ctx, worker.RunInput{Worker: w, Starter: roles.NewStarter(ctx, c, &cfg, log), Store: store,
		ReconcileInterval: recon.Interval, ReconcileGrace: recon.Grace, Registry: reg, Logger: log, Retention: retention})
}
