package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/streamhooks/streamhooks/activities"
	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/workflows"
)

// ErrRedeliveryNotStarted is Redeliver's error when Temporal did not take
// the redelivery; the delivery is left as it was, so the customer can
// simply ask again.
var ErrRedeliveryNotStarted = errors.New("the redelivery could not be started")

// RedeliveryStarter starts redelivery workflows; *Starter implements it.
type RedeliveryStarter interface {
	StartRedelivery(ctx context.Context, r RedeliveryStart) (models.WorkflowRun, error)
}

// Attempter makes one delivery attempt synchronously (a ping);
// *activities.Activities implements it.
type Attempter interface {
	AttemptDelivery(ctx context.Context, in activities.AttemptInput) (activities.AttemptResult, error)
}

// Deliveries holds the customer's use cases on one delivery: redeliver
// and ping.
type Deliveries struct {
	Store     *models.Store
	Workflows RedeliveryStarter
	Attempter Attempter
	Logger    *slog.Logger
	// Now is the clock of ping payloads; time.Now when nil.
	Now func() time.Time
}

// Redeliver starts a new attempt sequence for a finished delivery of the
// organization, with the same delivery id (the webhook-id header). The
// delivery is reopened first, so a second request sees it in progress
// (ECONFLICT); if the workflow cannot be started, the delivery is put back
// in its previous state (the compensation) and the error wraps
// ErrRedeliveryNotStarted.
//
// A delivery of an asset whose newer event was already sent to the
// webhook is ECONFLICT unless force (DESIGN §9).
func (d *Deliveries) Redeliver(ctx context.Context, orgID, id string, force bool) (*models.DeliveryView, error) {
	v, err := d.Store.GetDeliveryView(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	previous := v.State
	wfID := workflows.RedeliveryID(id, v.AttemptCount+1)
	if v, err = d.Store.ReopenDelivery(ctx, orgID, id, models.WorkflowRun{WorkflowID: wfID}, force); err != nil {
		return nil, err
	}
	run, err := d.Workflows.StartRedelivery(ctx, RedeliveryStart{
		WorkflowID: wfID, DeliveryID: id, WebhookID: v.WebhookID, OrganizationID: orgID, AssetID: v.AssetID, AssetStatus: v.AssetStatus, Force: force,
	})
	if err != nil {
		if ferr := d.Store.FinishDelivery(ctx, id, previous); ferr != nil {
			d.logger().ErrorContext(ctx, "restore delivery state", "deliveryID", id, "error", ferr)
		}
		return nil, fmt.Errorf("%w: %w", ErrRedeliveryNotStarted, err)
	}
	if err := d.Store.SetDeliveryRun(ctx, id, run); err != nil {
		return nil, err
	}
	v.RunID = run.RunID
	return v, nil
}

// PingResult is the outcome of a ping: the attempt as made and, when it
// could be read back, its recorded row.
type PingResult struct {
	DeliveryID string
	Delivered  bool
	StatusCode int // 0 when no answer came
	DurationMS int64
	ErrorClass models.ErrorClass
	// Attempt is the recorded attempt row; nil if it could not be read.
	Attempt *models.DeliveryAttempt
}

// Ping sends the documented test payload to one webhook of the
// organization now, through the same guarded, signed and recorded path as
// deliveries, and waits for the answer.
func (d *Deliveries) Ping(ctx context.Context, orgID, webhookID string) (*PingResult, error) {
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	payload, _ := json.Marshal(map[string]string{
		"type": "webhook.ping", "webhook_id": webhookID, "message": "This is a test delivery from streamhooks.",
		"sent_at": now().UTC().Format(time.RFC3339),
	})
	del, err := d.Store.CreatePing(ctx, orgID, webhookID, payload)
	if err != nil {
		return nil, err
	}
	res, err := d.Attempter.AttemptDelivery(ctx, activities.AttemptInput{DeliveryID: del.ID, Attempt: 1, Final: true, Test: true})
	if err != nil {
		return nil, err
	}
	out := &PingResult{DeliveryID: del.ID, Delivered: res.Outcome == activities.OutcomeDelivered,
		StatusCode: res.StatusCode, DurationMS: res.DurationMS, ErrorClass: res.ErrorClass}
	if atts, err := d.Store.ListAttempts(ctx, del.ID); err == nil && len(atts) == 1 {
		out.Attempt = &atts[0]
	}
	return out, nil
}

func (d *Deliveries) logger() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}
