package main

import (
	"context"
	"fmt"
	"io"

	"go.temporal.io/sdk/client"

	"github.com/streamhooks/streamhooks/api"
	"github.com/streamhooks/streamhooks/egress"
	"github.com/streamhooks/streamhooks/internal/config"
	"github.com/streamhooks/streamhooks/internal/roles"
	"github.com/streamhooks/streamhooks/service"
	"github.com/streamhooks/streamhooks/worker"
)

func cmdAPI(ctx context.Context, cfg config.Config, args []string, stderr io.Writer) error {
	fs := newFlags("api", "api [--addr HOST:PORT]", stderr)
	fs.StringVar(&cfg.APIAddr, "addr", cfg.APIAddr, "listen address ("+config.EnvAPIAddr+")")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	store, d, log, err := roles.Production(ctx, &cfg, "api", stderr)
	if err != nil {
		return err
	}
	defer store.Close()
	ln, err := roles.Listen("API", cfg.APIAddr)
	if err != nil {
		return err
	}
	// A lazy client lets the API start (and accept events) while Temporal
	// is down; the outbox starts their workflows once it is back.
	c, err := client.NewLazyClient(cfg.TemporalOptions(log))
	if err != nil {
		return fmt.Errorf("temporal client: %w", err)
	}
	defer c.Close()
	log.Info("api listening", "addr", ln.Addr().String(), "version", version, "temporal", cfg.TemporalAddress)
	reg := roles.NewRegistry()
	starter := roles.NewStarter(ctx, c, &cfg, log)
	outbox := service.NewOutbox(store, starter, log, reg)
	go outbox.Run(ctx)
	// The API sends test deliveries with the worker's activities.
	acts := worker.NewActivities(workerConfig(worker.Config{Store: store, Registry: reg, Logger: log}, d))
	h := api.New(api.Config{
		Store: store, Workflows: starter, Outbox: outbox, Ready: []api.ReadyCheck{roles.TemporalReady(c)},
		Attempter: acts, Registry: reg, Logger: log, Guard: egress.NewGuard(d.Allowed),
	})
	return roles.ServeHTTP(ctx, ln, h, log)
}
