package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/workflows"
)

// Reconciler defaults. A delivery left pending with no live workflow is
// resumed once its next attempt is overdue by DefaultGrace, at the next
// scan: within DefaultGrace + DefaultReconcileInterval of when it was due.
const (
	DefaultReconcileInterval = 30 * time.Second
	DefaultGrace             = 2 * time.Minute
	reconcileBatch           = 500
)

// Workflows is what the reconciler asks of Temporal; *Starter
// implements it.
type Workflows interface {
	Running(ctx context.Context, workflowID string) (bool, error)
	ResumeEvent(ctx context.Context, ev *models.AssetEvent) error
	StartRedelivery(ctx context.Context, r RedeliveryStart) (models.WorkflowRun, error)
}

// Reconciler is the last line of defence: it finds deliveries still
// pending whose next attempt is long overdue, and events started but never
// prepared, checks whether the workflow that owns them is still running,
// and starts a new run of it when it is not. A delivery whose owner is
// alive is never touched (it is late because workers or Temporal are
// slow, and will be attempted); and attempts are fenced by owner, so a
// resumed run can never attempt a delivery another live workflow drives.
type Reconciler struct {
	Store     *models.Store
	Workflows Workflows
	Logger    *slog.Logger
	Interval  time.Duration // DefaultReconcileInterval when 0
	Grace     time.Duration // DefaultGrace when 0
	Now       func() time.Time
	Resumed   prometheus.Counter // nil counts nothing
}

// NewResumedCounter returns the counter of workflows the reconciler
// resumed, registered in reg when it is not nil.
func NewResumedCounter(reg prometheus.Registerer) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "streamhooks_reconciler_resumed_total",
		Help: "Workflows the reconciler started again because deliveries or events had no live workflow.",
	})
	if reg != nil {
		reg.MustRegister(c)
	}
	return c
}

// Run reconciles until ctx ends.
func (r *Reconciler) Run(ctx context.Context) {
	interval := r.Interval
	if interval <= 0 {
		interval = DefaultReconcileInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := r.Once(ctx)
		if err != nil && ctx.Err() == nil {
			r.log().WarnContext(ctx, "reconcile failed", "error", err)
		}
		if n > 0 {
			r.log().InfoContext(ctx, "reconciler resumed workflows", "count", n)
		}
	}
}

func (r *Reconciler) log() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

func (r *Reconciler) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// Once makes one pass and returns how many workflows it resumed. Errors of
// single items are logged and the pass goes on.
func (r *Reconciler) Once(ctx context.Context) (int, error) {
	grace := r.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	cutoff := r.now().Add(-grace)
	var errs []error
	resumed := 0

	evs, err := r.Store.UnpreparedEvents(ctx, cutoff, reconcileBatch)
	if err != nil {
		return 0, err
	}
	for i := range evs {
		ok, err := r.resumeEvent(ctx, &evs[i])
		if err != nil {
			errs = append(errs, err)
		} else if ok {
			resumed++
		}
	}

	ds, err := r.Store.OverdueDeliveries(ctx, cutoff, reconcileBatch)
	if err != nil {
		return resumed, err
	}
	// One check per owning workflow: a fan-out's thousands of deliveries
	// share one owner.
	owners := map[string][]models.Delivery{}
	var order []string
	for _, d := range ds {
		if _, seen := owners[d.WorkflowID]; !seen {
			order = append(order, d.WorkflowID)
		}
		owners[d.WorkflowID] = append(owners[d.WorkflowID], d)
	}
	for _, owner := range order {
		ok, err := r.resumeDeliveries(ctx, owner, owners[owner])
		if err != nil {
			errs = append(errs, err)
		} else if ok {
			resumed++
		}
	}
	return resumed, errors.Join(errs...)
}

// resumeEvent starts the event's workflow again if it is not running and
// the event is still unprepared. The second check reads the database after
// Temporal said "not running": a workflow that prepared the event and
// closed between the scan and the check is seen done, not resumed.
func (r *Reconciler) resumeEvent(ctx context.Context, ev *models.AssetEvent) (bool, error) {
	running, err := r.Workflows.Running(ctx, ev.WorkflowID)
	if err != nil || running {
		return false, err
	}
	now, err := r.Store.GetEvent(ctx, ev.ID)
	if err != nil || now.PreparedAt != nil {
		return false, err
	}
	if err := r.Workflows.ResumeEvent(ctx, ev); err != nil {
		return false, fmt.Errorf("resume event %s: %w", ev.ID, err)
	}
	r.resumed("event", ev.WorkflowID, 0)
	return true, nil
}

// resumeDeliveries starts the owner of overdue deliveries again if it is
// not running: the event's workflow, or the redelivery's.
func (r *Reconciler) resumeDeliveries(ctx context.Context, owner string, ds []models.Delivery) (bool, error) {
	running, err := r.Workflows.Running(ctx, owner)
	if err != nil || running {
		return false, err
	}
	d := ds[0]
	ev, err := r.Store.GetEvent(ctx, d.EventID)
	if err != nil {
		return false, err
	}
	ids := make([]string, len(ds))
	for i := range ds {
		ids[i] = ds[i].ID
	}
	// Touch first, after Temporal said "not running": the owner's last
	// writes happened before it closed, so a delivery it finished between
	// the scan and the check is no longer pending here and is not resumed.
	// The touch also keeps the next scans off these deliveries while the
	// new run catches up.
	touched, err := r.Store.TouchDeliveries(ctx, owner, ids, r.now())
	if err != nil || touched == 0 {
		return false, err
	}
	switch {
	case owner == ev.WorkflowID:
		err = r.Workflows.ResumeEvent(ctx, ev)
	case len(ds) == 1 && workflows.IsRedeliveryOf(owner, d.ID):
		_, err = r.Workflows.StartRedelivery(ctx, RedeliveryStart{
			WorkflowID: owner, DeliveryID: d.ID, WebhookID: d.WebhookID, OrganizationID: d.OrganizationID,
			AssetID: ev.AssetID, AssetStatus: ev.AssetStatus, Resume: true,
		})
	default:
		return false, fmt.Errorf("deliveries %v: owner %q is neither their event's workflow nor one redelivery", ids, owner)
	}
	if err != nil {
		return false, fmt.Errorf("resume %s: %w", owner, err)
	}
	r.resumed("deliveries", owner, len(ds))
	return true, nil
}

func (r *Reconciler) resumed(what, workflowID string, n int) {
	r.log().Warn("resumed a workflow that was no longer running", "what", what, "workflowID", workflowID, "deliveries", n)
	if r.Resumed != nil {
		r.Resumed.Inc()
	}
}
