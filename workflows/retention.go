package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/streamhooks/streamhooks/activities"
)

// RetentionScheduleID is the Temporal Schedule that runs Retention.
const RetentionScheduleID = "streamhooks-retention"

// RetentionInput is the retention to apply.
type RetentionInput struct {
	Retention time.Duration
}

// Retention pacing: events per batch (one transaction each) and batches
// per run before it continues as new.
const (
	retentionBatch   = 500
	retentionPerRun  = 200
	retentionBetween = time.Second
)

// Retention deletes, batch by batch, the ended events older than the
// retention with their deliveries and attempts, until a batch comes back
// short. The schedule starts it hourly; its batches are bounded so the
// database is never held by one long transaction.
func Retention(ctx workflow.Context, in RetentionInput) (int, error) {
	var a *activities.Activities
	total := 0
	for b := range retentionPerRun {
		var n int
		c := call{startToClose: 2 * prepareTimeout, summary: fmt.Sprintf("Delete ended events older than %s (batch %d)", in.Retention, b+1)}
		if err := await(ctx, c, a.PurgeExpired, activities.PurgeInput{Retention: in.Retention, Limit: retentionBatch}, &n); err != nil {
			return total, err
		}
		total += n
		if n < retentionBatch {
			return total, nil
		}
		if err := workflow.Sleep(ctx, retentionBetween); err != nil {
			return total, err
		}
	}
	return total, workflow.NewContinueAsNewError(ctx, Retention, in)
}
