package workflows

import (
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/streamhooks/streamhooks/activities"
	"github.com/streamhooks/streamhooks/models"
)

// RecoverWebhookInput names a bulk recovery (DESIGN §10).
type RecoverWebhookInput struct {
	RecoveryID     string
	OrganizationID string
	WebhookID      string
	// SearchAttributes sets the custom search attributes on the
	// redeliveries it starts (only when the namespace has them).
	SearchAttributes bool
}

// Recovery pacing: deliveries reopened per activity, redeliveries started
// per run before it continues as new, and the polls of a run before it
// does (each keeps the history far from Temporal's limits).
const (
	recoveryPage      = 100
	recoveryPerRun    = 500
	recoveryPollsRun  = 200
	recoveryPollFirst = 2 * time.Second
	recoveryPollMax   = time.Minute
)

// RecoverWebhook redelivers the failed deliveries of a webhook in a time
// window: it plans them once (PlanRecovery), then page by page reopens
// them and starts one Redeliver child for each, abandoned when this
// workflow closes (each is a manual redelivery of its own, visible and
// resumable like any other), and finally waits, polling the database
// with a backoff, until every one has ended, when the recovery is
// completed. Its state lives in the database, so a continue-as-new
// carries nothing but the input.
func RecoverWebhook(ctx workflow.Context, in RecoverWebhookInput) error {
	var a *activities.Activities
	rin := activities.RecoveryInput{RecoveryID: in.RecoveryID, Limit: recoveryPage}
	var total int64
	if err := await(ctx, call{startToClose: prepareTimeout, summary: "Plan recovery " + in.RecoveryID}, a.PlanRecovery, rin, &total); err != nil {
		return nil // the recovery row is gone
	}
	started := 0
	for started < recoveryPerRun {
		var page []models.RecoveredDelivery
		if err := await(ctx, call{startToClose: 5 * prepareTimeout, summary: "Reopen the next deliveries of " + in.RecoveryID}, a.ReopenRecoveryPage, rin, &page); err != nil {
			return nil
		}
		if len(page) == 0 {
			return waitRecovery(ctx, in, rin)
		}
		// Start the page's children together, then wait until each
		// runs: one workflow task for the page, not one per child.
		futures := make([]workflow.ChildWorkflowFuture, len(page))
		for i, d := range page {
			futures[i] = startRedelivery(ctx, in, d)
		}
		for i, f := range futures {
			var exec workflow.Execution
			if err := f.GetChildWorkflowExecution().Get(ctx, &exec); err != nil {
				workflow.GetLogger(ctx).Warn("redelivery of a recovery not started; the reconciler resumes it", "deliveryID", page[i].DeliveryID, "error", err)
			}
		}
		started += len(page)
	}
	return workflow.NewContinueAsNewError(ctx, RecoverWebhook, in)
}

// startRedelivery starts the Redeliver child of one reopened delivery. A
// child that cannot be started (its id is taken) is left to the
// reconciler, which resumes a pending redelivery whose workflow is not
// running.
func startRedelivery(ctx workflow.Context, in RecoverWebhookInput, d models.RecoveredDelivery) workflow.ChildWorkflowFuture {
	opts := workflow.ChildWorkflowOptions{
		WorkflowID:            d.WorkflowID,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		StaticSummary:         fmt.Sprintf("Redeliver %s (asset %s, recovery %s)", d.DeliveryID, d.AssetID, in.RecoveryID),
		Memo:                  map[string]any{"OrganizationId": in.OrganizationID, "AssetId": d.AssetID, "WebhookId": d.WebhookID, "RecoveryId": in.RecoveryID},
	}
	if in.SearchAttributes {
		opts.TypedSearchAttributes = temporal.NewSearchAttributes(
			OrganizationIDKey.ValueSet(in.OrganizationID), AssetIDKey.ValueSet(d.AssetID),
			AssetStatusKey.ValueSet(d.AssetStatus), WebhookIDKey.ValueSet(d.WebhookID))
	}
	cctx := workflow.WithChildOptions(ctx, opts)
	return workflow.ExecuteChildWorkflow(cctx, Redeliver, RedeliverInput{DeliveryID: d.DeliveryID, OrganizationID: in.OrganizationID, Force: d.Force})
}

// waitRecovery polls until every redelivery of the recovery has ended.
func waitRecovery(ctx workflow.Context, in RecoverWebhookInput, rin activities.RecoveryInput) error {
	var a *activities.Activities
	pause := recoveryPollFirst
	for range recoveryPollsRun {
		var left int64
		if err := await(ctx, call{startToClose: prepareTimeout, summary: "Count what recovery " + in.RecoveryID + " has left"}, a.SettleRecovery, rin, &left); err != nil {
			return nil
		}
		if left == 0 {
			return nil
		}
		summary := fmt.Sprintf("%d redeliveries of recovery %s still running", left, in.RecoveryID)
		if err := workflow.NewTimerWithOptions(ctx, pause, workflow.TimerOptions{Summary: summary}).Get(ctx, nil); err != nil {
			return err
		}
		pause = min(pause*2, recoveryPollMax)
	}
	return workflow.NewContinueAsNewError(ctx, RecoverWebhook, in)
}
