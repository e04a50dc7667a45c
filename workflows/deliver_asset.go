package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/streamhooks/streamhooks/activities"
)

// startDeliveriesTimeout bounds the activity that snapshots the webhooks
// and makes the first attempts: the snapshot, the longest attempt a
// worker may be configured for, and the rows.
const startDeliveriesTimeout = prepareTimeout + activities.MaxAttemptTimeout + attemptRecordMargin

// DeliverAssetEvent delivers one asset event to every active webhook of
// its organization: the workflow every accepted event starts. Each
// delivery runs its own attempt loop in a workflow goroutine, so a dead
// endpoint never delays a healthy one.
//
// One local activity (StartDeliveries) snapshots the webhooks into
// deliveries and makes every first attempt at once, recording them
// together; only deliveries that need a retry cost more (a durable timer
// and one regular activity per further attempt, each audited in Temporal
// UI). A fan-out larger than one batch (batchSize) is split into child
// workflows of one batch each (DeliverBatch), so no history outgrows
// Temporal's limits and no payload grows with the number of webhooks.
//
// Nothing but an HTTP outcome ends a delivery: activity errors
// (infrastructure) are retried without limit, so an outage of any length
// delays deliveries and never loses them.
//
// It is a workflow type of its own rather than a workflow.GetVersion
// branch of DeliverEvent: a version marker also upserts the
// TemporalChangeVersion search attribute, one more visibility write per
// event (docs/benchmarks.md).
func DeliverAssetEvent(ctx workflow.Context, in DeliverEventInput) (DeliverEventResult, error) {
	var a *activities.Activities
	var first activities.FirstAttemptsResult
	start := call{local: true, startToClose: startDeliveriesTimeout, summary: "Snapshot the webhooks of " + in.OrganizationID + " and make the first attempts"}
	err := await(ctx, start, a.StartDeliveries, activities.PrepareInput{EventID: in.EventID, Inline: maxBatch}, &first)
	if err != nil {
		// The event row is gone: there is nothing left to deliver.
		workflow.GetLogger(ctx).Error("event not found", "eventID", in.EventID, "error", err)
		return DeliverEventResult{}, nil
	}
	prep := first.PrepareResult
	owner := workflow.GetInfo(ctx).WorkflowExecution.ID
	if prep.Total <= batchSize(prep.Schedule) && len(prep.Deliveries) == prep.Total {
		return runAll(ctx, plan{prep: prep, owner: owner, localFirst: true, first: first.First}, prep.Deliveries), nil
	}
	// Too many for one workflow: the batches make the attempts (any
	// StartDeliveries made are recorded, and the batches go on after them).
	return fanOut(ctx, in, prep, owner), nil
}
