package workflows

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/streamhooks/streamhooks/activities"
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
	// Superseded counts deliveries a newer event of their asset replaced
	// (DESIGN §9).
	Superseded int `json:",omitempty"`
	// Released counts deliveries another workflow drives now (a manual
	// redelivery took them over).
	Released int
}

// DeliverEvent is the event workflow as released before
// DeliverAssetEvent (its workflow type is "DeliverEvent"). New events no
// longer start it; it stays registered so that workflows started by an
// earlier release finish with the code they started with. Its first
// attempts are local activities of their own, after a snapshot activity.
func DeliverEvent(ctx workflow.Context, in DeliverEventInput) (DeliverEventResult, error) {
	if workflow.GetVersion(ctx, durableFanout, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return deliverEventV1(ctx, in)
	}
	var a *activities.Activities
	var prep activities.PrepareResult
	snapshot := call{local: true, startToClose: prepareTimeout, summary: "Snapshot the webhooks of " + in.OrganizationID}
	err := await(ctx, snapshot, a.PrepareDeliveries, activities.PrepareInput{EventID: in.EventID, Inline: maxBatch}, &prep)
	if err != nil {
		// The event row is gone: there is nothing left to deliver.
		workflow.GetLogger(ctx).Error("event not found", "eventID", in.EventID, "error", err)
		return DeliverEventResult{}, nil
	}
	owner := workflow.GetInfo(ctx).WorkflowExecution.ID
	batch := batchSize(prep.Schedule)
	if prep.Total <= batch && len(prep.Deliveries) == prep.Total {
		return runAll(ctx, plan{prep: prep, owner: owner, localFirst: true}, prep.Deliveries), nil
	}
	return fanOut(ctx, in, prep, owner), nil
}

// fanOut drives an event with more deliveries than one workflow should
// hold: child workflows of one batch each, in parallel.
func fanOut(ctx workflow.Context, in DeliverEventInput, prep activities.PrepareResult, owner string) DeliverEventResult {
	batch := batchSize(prep.Schedule)
	n := (prep.Total + batch - 1) / batch
	results := make([]DeliverEventResult, n)
	wg := workflow.NewWaitGroup(ctx)
	for b := range n {
		wg.Add(1)
		bin := DeliverBatchInput{
			EventID: in.EventID, OrganizationID: in.OrganizationID, Owner: owner,
			Offset: b * batch, Limit: batch, Schedule: prep.Schedule, AttemptTimeout: prep.AttemptTimeout,
		}
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			results[b] = runBatch(ctx, bin, prep.Total)
		})
	}
	wg.Wait(ctx)
	var res DeliverEventResult
	for _, r := range results {
		res.Succeeded += r.Succeeded
		res.Failed += r.Failed
		res.Cancelled += r.Cancelled
		res.Superseded += r.Superseded
		res.Released += r.Released
	}
	return res
}

// runBatch runs one child workflow of a fan-out until it completes. A
// child that ends otherwise (terminated by an operator, say) is started
// again: its deliveries are still owned by this workflow.
func runBatch(ctx workflow.Context, in DeliverBatchInput, total int) DeliverEventResult {
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:    BatchWorkflowID(in.Owner, in.Offset/in.Limit),
		StaticSummary: fmt.Sprintf("Deliveries %d–%d of %d for event %s", in.Offset+1, min(in.Offset+in.Limit, total), total, in.EventID),
	})
	for {
		var r DeliverEventResult
		err := workflow.ExecuteChildWorkflow(cctx, DeliverBatch, in).Get(ctx, &r)
		if err == nil {
			return r
		}
		if temporal.IsCanceledError(err) || ctx.Err() != nil {
			return r
		}
		workflow.GetLogger(ctx).Warn("delivery batch ended early; starting it again", "offset", in.Offset, "error", err)
		if workflow.Sleep(ctx, infraPause) != nil {
			return r
		}
	}
}

// DeliverBatchInput is one batch of a fan-out: a page of the event's
// deliveries and the settings the parent read once.
type DeliverBatchInput struct {
	EventID        string
	OrganizationID string
	// Owner is the event workflow's id, which owns the deliveries.
	Owner          string
	Offset         int
	Limit          int
	Schedule       []time.Duration
	AttemptTimeout time.Duration
}

// DeliverBatch drives one page of a large fan-out (a child of
// DeliverEvent). Its attempts are regular activities: they queue in the
// task queue, not in a worker's memory, and leave the workers' local
// activity slots to the first attempts of small events, which therefore
// never wait behind a large fan-out.
func DeliverBatch(ctx workflow.Context, in DeliverBatchInput) (DeliverEventResult, error) {
	var a *activities.Activities
	var refs []activities.DeliveryRef
	load := call{startToClose: prepareTimeout, summary: "Load deliveries of " + in.EventID}
	err := await(ctx, load, a.LoadBatch, activities.BatchInput{EventID: in.EventID, Offset: in.Offset, Limit: in.Limit}, &refs)
	if err != nil {
		return DeliverEventResult{}, nil // the event is gone
	}
	prep := activities.PrepareResult{Total: len(refs), Schedule: in.Schedule, AttemptTimeout: in.AttemptTimeout}
	return runAll(ctx, plan{prep: prep, owner: in.Owner, lowPriority: true}, refs), nil
}

// RedeliverInput names the delivery a customer asked to send again.
type RedeliverInput struct {
	DeliveryID     string
	OrganizationID string
	// Force sends it even when a newer event of its asset was sent to the
	// webhook already (DESIGN §9).
	Force bool
}

// Redeliver runs a new attempt sequence for one finished delivery, with the
// same delivery id (webhook-id) and attempts recorded as manual.
func Redeliver(ctx workflow.Context, in RedeliverInput) (DeliverEventResult, error) {
	if workflow.GetVersion(ctx, durableFanout, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return redeliverV1(ctx, in)
	}
	var a *activities.Activities
	var prep activities.PrepareResult
	planning := call{startToClose: prepareTimeout, summary: "Plan the redelivery of " + in.DeliveryID}
	err := await(ctx, planning, a.PrepareRedelivery, activities.RedeliveryInput{DeliveryID: in.DeliveryID, Force: in.Force}, &prep)
	if err != nil {
		return DeliverEventResult{}, nil // the delivery is gone
	}
	return runAll(ctx, plan{prep: prep, owner: workflow.GetInfo(ctx).WorkflowExecution.ID}, prep.Deliveries), nil
}

// plan is how runAll runs a set of deliveries.
type plan struct {
	prep  activities.PrepareResult
	owner string // the workflow id that must own each delivery
	// localFirst runs each first attempt as a local activity.
	localFirst bool
	// lowPriority queues the attempts behind other work (fan-out batches).
	lowPriority bool
	// first, when set, holds per delivery (as listed to runAll) the
	// result of its first attempt, made already (StartDeliveries); an
	// empty Outcome means it was not made.
	first []activities.AttemptResult
}

// runAll runs every delivery in its own goroutine and counts how they ended.
func runAll(ctx workflow.Context, p plan, refs []activities.DeliveryRef) DeliverEventResult {
	outcomes := make([]activities.Outcome, len(refs))
	wg := workflow.NewWaitGroup(ctx)
	for i, d := range refs {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			var made *activities.AttemptResult
			if i < len(p.first) && p.first[i].Outcome != "" {
				made = &p.first[i]
			}
			outcomes[i] = runDelivery(ctx, p, d, made)
		})
	}
	wg.Wait(ctx)
	var res DeliverEventResult
	for _, o := range outcomes {
		res.add(o)
	}
	return res
}

// add counts how one delivery ended.
func (r *DeliverEventResult) add(o activities.Outcome) {
	switch o {
	case activities.OutcomeDelivered:
		r.Succeeded++
	case activities.OutcomeCancelled:
		r.Cancelled++
	case activities.OutcomeReleased:
		r.Released++
	case activities.OutcomeSuperseded:
		r.Superseded++
	default:
		r.Failed++
	}
}

// runDelivery makes the attempts of one delivery on the retry schedule and
// returns how it ended. Waits are durable timers: a worker restart
// resumes the schedule where it was. A delivery resumed by a new run
// starts after the attempts it already had, no earlier than planned.
// made, when not nil, is the result of its first attempt, already made.
func runDelivery(ctx workflow.Context, p plan, d activities.DeliveryRef, made *activities.AttemptResult) activities.Outcome {
	if o, ok := d.Settled(); ok {
		return o
	}
	if wait := d.NotBefore.Sub(workflow.Now(ctx)); made == nil && !d.NotBefore.IsZero() && wait > 0 {
		if workflow.NewTimerWithOptions(ctx, wait, workflow.TimerOptions{Summary: "Resume " + d.Host + " when its retry is due"}).Get(ctx, nil) != nil {
			return activities.OutcomeCancelled
		}
	}
	var a *activities.Activities
	schedule := p.prep.Schedule[min(d.ScheduleStart, len(p.prep.Schedule)):]
	first := max(d.FirstAttempt, 1)
	waits := 0 // in a row, for the turn of this attempt
	waited := false
	for attempt := first; ; attempt++ {
		k := attempt - first // index into the remaining schedule
		final := k >= len(schedule)
		var delay time.Duration
		if !final {
			delay = activities.Jitter(schedule[k], d.ID, attempt)
		}
		in := activities.AttemptInput{DeliveryID: d.ID, Attempt: attempt, Final: final, NextDelay: delay, Manual: d.Manual, Force: d.Force, Owner: p.owner}
		// After a wait for its turn the attempt is a regular activity: it
		// may wait a little more, which a local one must not (it would
		// hold up the workflow's other deliveries).
		c := call{local: p.localFirst && attempt == first && !waited, lowPriority: p.lowPriority,
			startToClose: p.prep.AttemptTimeout + attemptRecordMargin, summary: fmt.Sprintf("POST %s (attempt %d)", d.Host, attempt)}
		var res activities.AttemptResult
		if made != nil {
			res, made = *made, nil
		} else if err := await(ctx, c, a.AttemptDelivery, in, &res); err != nil {
			// Only a missing row or a cancelled workflow gets here.
			workflow.GetLogger(ctx).Error("delivery attempt failed permanently", "deliveryID", d.ID, "attempt", attempt, "error", err)
			return activities.OutcomeFailed
		}
		if res.Outcome == activities.OutcomeWait {
			waits++
			waited = true
			if waitTurn(ctx, d, res, waits) != nil {
				return activities.OutcomeCancelled
			}
			attempt-- // the same attempt, once it is its turn
			continue
		}
		waits = 0
		if res.Outcome == activities.OutcomeSuperseded {
			noteSuperseded(ctx, d, res.SupersededBy)
			return res.Outcome
		}
		if res.Outcome != activities.OutcomeRetry {
			return res.Outcome
		}
		if final {
			return activities.OutcomeFailed
		}
		wait := max(delay, res.RetryAfter)
		summary := fmt.Sprintf("Retry %s after %s (attempt %d of %d)", d.Host, outcomeText(res), attempt+1, first+len(schedule))
		if err := workflow.NewTimerWithOptions(ctx, wait, workflow.TimerOptions{Summary: summary}).Get(ctx, nil); err != nil {
			return activities.OutcomeCancelled // the workflow itself was cancelled
		}
	}
}

// await runs fn(in) as c says until it succeeds. The retry policy already
// retries infrastructure errors without limit; this loop is the second
// line: should the activity still end in an error that is neither "not
// found" nor a cancellation (a timeout the SDK imposed, say), it waits and
// starts the activity again instead of ending the delivery.
func await(ctx workflow.Context, c call, fn, in, out any) error {
	for {
		err := c.start(ctx, fn, in).Get(ctx, out)
		if err == nil || isNotFound(err) || temporal.IsCanceledError(err) || ctx.Err() != nil {
			return err
		}
		workflow.GetLogger(ctx).Warn("activity ended with an infrastructure error; starting it again", "error", err)
		if err := workflow.Sleep(ctx, infraPause); err != nil {
			return err
		}
	}
}

// isNotFound reports the non-retryable error of a missing row.
func isNotFound(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.Type() == activities.ErrTypeNotFound
}

// batchSize is how many deliveries one workflow drives, so its history
// stays far below Temporal's 51,200-event limit however long the retry
// schedule: each attempt costs at most eventsPerAttempt events.
func batchSize(schedule []time.Duration) int {
	attempts := len(schedule) + 1
	return min(max(historyBudget/(eventsPerAttempt*attempts), minBatch), maxBatch)
}

// BatchWorkflowID is the id of batch b of the fan-out of the event
// workflow owner.
func BatchWorkflowID(owner string, b int) string { return owner + "/batch-" + strconv.Itoa(b) }

// outcomeText renders a failed attempt for summaries: "503" or "timeout".
func outcomeText(r activities.AttemptResult) string {
	if r.StatusCode != 0 {
		return fmt.Sprint(r.StatusCode)
	}
	return string(r.ErrorClass)
}

// turnPoll is the pause before asking for a turn again, the n-th time in
// a row: short at first (the attempt in flight is usually about to end),
// then backing off to 10 s, so a slow receiver costs few history events.
func turnPoll(n int) time.Duration {
	if n <= 1 {
		return 100 * time.Millisecond
	}
	return min(time.Second<<(n-2), 10*time.Second)
}

// waitTurn waits before delivery d asks again for its turn (res is
// OutcomeWait): while an attempt of the same asset to the webhook is in
// flight, at most as long as that attempt may still run; behind an older
// delivery (delivery_mode all), until that one's next attempt.
func waitTurn(ctx workflow.Context, d activities.DeliveryRef, res activities.AttemptResult, n int) error {
	pause := turnPoll(n)
	summary := fmt.Sprintf("Wait for the attempt in flight to %s for the same asset", d.Host)
	if res.InFlight {
		pause = min(pause, max(res.Wait, 100*time.Millisecond))
	} else {
		pause += res.Wait
		summary = fmt.Sprintf("Wait for an older event of the asset to end at %s (delivery_mode all)", d.Host)
	}
	return workflow.NewTimerWithOptions(ctx, pause, workflow.TimerOptions{Summary: summary}).Get(ctx, nil)
}

// noteSuperseded leaves in the history, for Temporal UI, why delivery d
// ended without being sent: a timer of a millisecond whose summary names
// the sequence that superseded it.
func noteSuperseded(ctx workflow.Context, d activities.DeliveryRef, by int64) {
	summary := fmt.Sprintf("Superseded by sequence %d: %s is not sent this older state of the asset (delivery %s)", by, d.Host, d.ID)
	_ = workflow.NewTimerWithOptions(ctx, time.Millisecond, workflow.TimerOptions{Summary: summary}).Get(ctx, nil)
}
