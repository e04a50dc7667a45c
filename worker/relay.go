package worker

import (
	"context"
	"log/slog"
	"time"

	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/workflows"
)

// Relay starts the workflows of events that were committed but whose start
// was never confirmed (a crash or a Temporal outage between the two). It is
// the outbox half of the "store, then start" handshake; starts are
// idempotent, so racing the API or another relay is harmless.
type Relay struct {
	Store   *models.Store
	Starter *workflows.Starter
	Logger  *slog.Logger
	// Interval between scans, and MinAge before an event counts as stuck
	// (so the relay does not race a request still in flight).
	Interval time.Duration
	MinAge   time.Duration
}

// Run scans until ctx ends.
func (r *Relay) Run(ctx context.Context) {
	interval := r.Interval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := r.Once(ctx); err != nil {
			r.Logger.WarnContext(ctx, "relay scan failed", "error", err)
		} else if n > 0 {
			r.Logger.InfoContext(ctx, "relay started stuck events", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once starts every stuck event found and returns how many it started.
func (r *Relay) Once(ctx context.Context) (int, error) {
	minAge := r.MinAge
	if minAge <= 0 {
		minAge = 30 * time.Second
	}
	evs, err := r.Store.UnstartedEvents(ctx, time.Now().Add(-minAge), 500)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range evs {
		if err := r.Starter.StartEvent(ctx, &evs[i]); err != nil {
			return n, err
		}
		if err := r.Store.MarkEventStarted(ctx, evs[i].ID); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
