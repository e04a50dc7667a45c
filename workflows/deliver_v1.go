package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/streamhooks/streamhooks/activities"
)

// This file keeps the released code paths that workflows started before
// the durable-fanout change still replay on (workflow.GetVersion returns
// DefaultVersion for them). Only local activity options changed, which
// history does not record: their retries no longer end when the
// start-to-close timeout elapses (issue 11). Do not change anything else.

// deliverEventV1 is DeliverEvent before durable-fanout.
func deliverEventV1(ctx workflow.Context, in DeliverEventInput) (DeliverEventResult, error) {
	var a *activities.Activities
	var prep activities.PrepareResult
	// Version 1 runs the hot path (the snapshot and each first attempt) as
	// local activities: no task-queue round trips, several times the
	// throughput (docs/benchmarks.md). Retries stay regular activities so
	// operators see each one in Temporal UI.
	local := workflow.GetVersion(ctx, localFirstAttempt, workflow.DefaultVersion, 1) == 1
	prepare := activities.PrepareInput{EventID: in.EventID}
	summary := "Snapshot the webhooks of " + in.OrganizationID
	fut := call{local: local, startToClose: prepareTimeout, summary: summary}.start(ctx, a.PrepareDeliveries, prepare)
	if err := fut.Get(ctx, &prep); err != nil {
		return DeliverEventResult{}, fmt.Errorf("prepare deliveries of event %s: %w", in.EventID, err)
	}

	outcomes := make([]activities.Outcome, len(prep.Deliveries))
	wg := workflow.NewWaitGroup(ctx)
	for i, d := range prep.Deliveries {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			outcomes[i] = runDeliveryV1(ctx, prep, d, local)
		})
	}
	wg.Wait(ctx)

	var res DeliverEventResult
	for _, o := range outcomes {
		res.add(o)
	}
	return res, nil
}

// redeliverV1 is Redeliver before durable-fanout.
func redeliverV1(ctx workflow.Context, in RedeliverInput) (DeliverEventResult, error) {
	var a *activities.Activities
	var prep activities.PrepareResult
	planning := call{startToClose: prepareTimeout, summary: "Plan the redelivery of " + in.DeliveryID}
	if err := planning.start(ctx, a.PrepareRedelivery, activities.RedeliveryInput{DeliveryID: in.DeliveryID}).Get(ctx, &prep); err != nil {
		return DeliverEventResult{}, fmt.Errorf("prepare redelivery of %s: %w", in.DeliveryID, err)
	}
	var res DeliverEventResult
	for _, d := range prep.Deliveries {
		res.add(runDeliveryV1(ctx, prep, d, false))
	}
	return res, nil
}

// runDeliveryV1 is runDelivery before durable-fanout.
func runDeliveryV1(ctx workflow.Context, prep activities.PrepareResult, d activities.DeliveryRef, localFirst bool) activities.Outcome {
	var a *activities.Activities
	first := max(d.FirstAttempt, 1)
	for attempt := first; ; attempt++ {
		k := attempt - first // index into the schedule
		final := k >= len(prep.Schedule)
		var delay time.Duration
		if !final {
			delay = activities.Jitter(prep.Schedule[k], d.ID, attempt)
		}
		var res activities.AttemptResult
		in := activities.AttemptInput{DeliveryID: d.ID, Attempt: attempt, Final: final, NextDelay: delay, Manual: d.Manual}
		summary := fmt.Sprintf("POST %s (attempt %d)", d.Host, attempt)
		c := call{local: localFirst && attempt == first, startToClose: prep.AttemptTimeout + attemptRecordMargin, summary: summary}
		if err := c.start(ctx, a.AttemptDelivery, in).Get(ctx, &res); err != nil {
			// Only a non-retryable error gets here: the delivery row is gone.
			workflow.GetLogger(ctx).Error("delivery attempt failed permanently", "deliveryID", d.ID, "attempt", attempt, "error", err)
			return activities.OutcomeFailed
		}
		switch res.Outcome {
		case activities.OutcomeDelivered, activities.OutcomeCancelled, activities.OutcomeFailed, activities.OutcomeSuperseded:
			return res.Outcome
		}
		if final {
			return activities.OutcomeFailed
		}
		wait := max(delay, res.RetryAfter)
		summary = fmt.Sprintf("Retry %s after %s (attempt %d of %d)", d.Host, outcomeText(res), attempt+1, first+len(prep.Schedule))
		if err := workflow.NewTimerWithOptions(ctx, wait, workflow.TimerOptions{Summary: summary}).Get(ctx, nil); err != nil {
			return activities.OutcomeCancelled // the workflow itself was cancelled
		}
	}
}
