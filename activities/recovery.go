package activities

import (
	"context"
	"strconv"
	"time"

	"github.com/streamhooks/streamhooks/models"
)

// RedeliveryID is the workflow id of the redelivery of a delivery that
// starts with attempt number firstAttempt, so a repeated request
// collapses. The reconciler recognises it (workflows.IsRedeliveryOf) and
// resumes a redelivery whose workflow is gone.
func RedeliveryID(deliveryID string, firstAttempt int) string {
	return "redeliver:" + deliveryID + ":" + strconv.Itoa(firstAttempt)
}

// RecoveryInput names a recovery (DESIGN §10).
type RecoveryInput struct {
	RecoveryID string
	// Limit bounds the deliveries one ReopenRecoveryPage reopens.
	Limit int
}

// PlanRecovery lists the deliveries of a recovery, once, and returns how
// many there are.
func (a *Activities) PlanRecovery(ctx context.Context, in RecoveryInput) (int64, error) {
	n, err := a.store.PlanRecovery(ctx, in.RecoveryID)
	return n, activityError(err)
}

// ReopenRecoveryPage reopens the next page of a recovery's deliveries,
// each owned by the Redeliver workflow the caller starts next; empty when
// none is left.
func (a *Activities) ReopenRecoveryPage(ctx context.Context, in RecoveryInput) ([]models.RecoveredDelivery, error) {
	out, err := a.store.ReopenRecoveryItems(ctx, in.RecoveryID, max(in.Limit, 1), RedeliveryID)
	return out, activityError(err)
}

// SettleRecovery records the outcomes of the recovery's finished
// redeliveries and returns how many are left; at 0 it is completed.
func (a *Activities) SettleRecovery(ctx context.Context, in RecoveryInput) (int64, error) {
	n, err := a.store.SettleRecovery(ctx, in.RecoveryID)
	return n, activityError(err)
}

// PurgeInput is one retention batch: delete up to Limit ended events
// accepted more than Retention ago.
type PurgeInput struct {
	Retention time.Duration
	Limit     int
}

// PurgeExpired deletes one batch of expired events (DESIGN §10) and
// returns how many it deleted.
func (a *Activities) PurgeExpired(ctx context.Context, in PurgeInput) (int, error) {
	n, err := a.store.DeleteExpired(ctx, a.now().Add(-in.Retention), max(in.Limit, 1))
	return n, activityError(err)
}
