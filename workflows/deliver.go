package workflows

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/streamhooks/streamhooks/activities"
	"github.com/streamhooks/streamhooks/models"
)

// DeliverEventInput identifies the event; everything else (webhooks,
// payload, secrets) is loaded by activities so it never enters history.
type DeliverEventInput struct {
	EventID        string
	OrganizationID string
	AssetID        string
	AssetStatus    string
}

// DeliverEventResult counts how the event's deliveries ended.
type DeliverEventResult struct {
	Succeeded int
	Failed    int
	Cancelled int
}

// DeliverEvent delivers one asset event to every active webhook of its
// organization. Each delivery runs its own attempt loop in a workflow
// goroutine, so a dead endpoint never delays a healthy one.
//
// Ordering per (webhook, asset) can be added by replacing the goroutine per
// delivery with a signal to a per-(webhook, asset) entity workflow that runs
// the same runDelivery loop serially.
func DeliverEvent(ctx workflow.Context, in DeliverEventInput) (DeliverEventResult, error) {
	var a *activities.Activities
	var prep activities.PrepareResult
	// Version 1 runs the hot path (the snapshot and each first attempt) as
	// local activities: no task-queue round trips, several times the
	// throughput (docs/benchmarks.md). Retries stay regular activities so
	// operators see each one in Temporal UI.
	local := workflow.GetVersion(ctx, localFirstAttempt, workflow.DefaultVersion, 1) == 1
	prepare := activities.PrepareInput{EventID: in.EventID}
	summary := "Snapshot the webhooks of " + in.OrganizationID
	var fut workflow.Future
	if local {
		lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: prepareTimeout, RetryPolicy: infraRetry, Summary: summary,
		})
		fut = workflow.ExecuteLocalActivity(lctx, a.PrepareDeliveries, prepare)
	} else {
		pctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: prepareTimeout, RetryPolicy: infraRetry, Summary: summary,
		})
		fut = workflow.ExecuteActivity(pctx, a.PrepareDeliveries, prepare)
	}
	if err := fut.Get(ctx, &prep); err != nil {
		return DeliverEventResult{}, fmt.Errorf("prepare deliveries of event %s: %w", in.EventID, err)
	}

	states := make([]string, len(prep.Deliveries))
	wg := workflow.NewWaitGroup(ctx)
	for i, d := range prep.Deliveries {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			states[i] = runDelivery(ctx, prep, d, local)
		})
	}
	wg.Wait(ctx)

	var res DeliverEventResult
	for _, s := range states {
		res.add(s)
	}
	return res, nil
}

// add counts one delivery's final state.
func (r *DeliverEventResult) add(state string) {
	switch state {
	case models.DeliverySucceeded:
		r.Succeeded++
	case models.DeliveryCancelled:
		r.Cancelled++
	default:
		r.Failed++
	}
}

// RedeliverInput names the delivery a customer asked to send again.
type RedeliverInput struct {
	DeliveryID     string
	OrganizationID string
}

// Redeliver runs a new attempt sequence for one finished delivery, with the
// same delivery id (webhook-id) and attempts recorded as manual.
func Redeliver(ctx workflow.Context, in RedeliverInput) (DeliverEventResult, error) {
	var a *activities.Activities
	var prep activities.PrepareResult
	pctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: prepareTimeout, RetryPolicy: infraRetry, Summary: "Plan the redelivery of " + in.DeliveryID,
	})
	if err := workflow.ExecuteActivity(pctx, a.PrepareRedelivery, activities.RedeliveryInput{DeliveryID: in.DeliveryID}).Get(ctx, &prep); err != nil {
		return DeliverEventResult{}, fmt.Errorf("prepare redelivery of %s: %w", in.DeliveryID, err)
	}
	var res DeliverEventResult
	for _, d := range prep.Deliveries {
		res.add(runDelivery(ctx, prep, d, false))
	}
	return res, nil
}

// runDelivery makes the attempts of one delivery on the retry schedule and
// returns its final state. Waits are durable timers: a worker restart
// resumes the schedule where it was.
// With localFirst the first attempt is a local activity.
func runDelivery(ctx workflow.Context, prep activities.PrepareResult, d activities.DeliveryRef, localFirst bool) string {
	var a *activities.Activities
	first := max(d.FirstAttempt, 1)
	for attempt := first; ; attempt++ {
		k := attempt - first // index into the schedule
		final := k >= len(prep.Schedule)
		var delay time.Duration
		if !final {
			delay = jitter(prep.Schedule[k], d.ID, attempt)
		}
		var res activities.AttemptResult
		in := activities.AttemptInput{DeliveryID: d.ID, Attempt: attempt, Final: final, NextDelay: delay, Manual: d.Manual}
		summary := fmt.Sprintf("POST %s (attempt %d)", d.Host, attempt)
		var fut workflow.Future
		if localFirst && attempt == first {
			fut = workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
				StartToCloseTimeout: prep.AttemptTimeout + attemptRecordMargin, RetryPolicy: infraRetry, Summary: summary,
			}), a.AttemptDelivery, in)
		} else {
			fut = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
				StartToCloseTimeout: prep.AttemptTimeout + attemptRecordMargin, RetryPolicy: infraRetry, Summary: summary,
			}), a.AttemptDelivery, in)
		}
		if err := fut.Get(ctx, &res); err != nil {
			// Only a non-retryable error gets here: the delivery row is gone.
			workflow.GetLogger(ctx).Error("delivery attempt failed permanently", "deliveryID", d.ID, "attempt", attempt, "error", err)
			return models.DeliveryFailed
		}
		switch res.Outcome {
		case activities.OutcomeDelivered:
			return models.DeliverySucceeded
		case activities.OutcomeCancelled:
			return models.DeliveryCancelled
		case activities.OutcomeFailed:
			return models.DeliveryFailed
		}
		if final {
			return models.DeliveryFailed
		}
		wait := max(delay, res.RetryAfter)
		summary = fmt.Sprintf("Retry %s after %s (attempt %d of %d)", d.Host, outcomeText(res), attempt+1, first+len(prep.Schedule))
		if err := workflow.NewTimerWithOptions(ctx, wait, workflow.TimerOptions{Summary: summary}).Get(ctx, nil); err != nil {
			return models.DeliveryCancelled // the workflow itself was cancelled
		}
	}
}

// outcomeText renders a failed attempt for summaries: "503" or "timeout".
func outcomeText(r activities.AttemptResult) string {
	if r.StatusCode != 0 {
		return fmt.Sprint(r.StatusCode)
	}
	return r.ErrorClass
}

// jitter spreads a scheduled wait by ±jitterFraction. It is derived from the
// delivery id and attempt number, so it is deterministic on replay without
// a side effect.
func jitter(d time.Duration, deliveryID string, attempt int) time.Duration {
	h := fnv.New64a()
	_, _ = h.Write([]byte(deliveryID + "/" + strconv.Itoa(attempt)))
	f := float64(h.Sum64()%10001)/10000*2 - 1 // [-1, 1]
	return d + time.Duration(f*jitterFraction*float64(d))
}
