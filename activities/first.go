package activities

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/streamhooks/streamhooks/models"
)

// MaxAttemptTimeout is the longest per-attempt timeout a worker accepts
// (STREAMHOOKS_ATTEMPT_TIMEOUT): workflows bound the activity that makes
// an event's first attempts by it.
const MaxAttemptTimeout = 5 * time.Minute

// FirstAttemptsResult is PrepareResult with, for each listed delivery, the
// result of its first attempt when StartDeliveries made it (Outcome empty
// when it did not: the delivery was settled, resumed past its first
// attempt, or not due yet).
type FirstAttemptsResult struct {
	PrepareResult
	First []AttemptResult
}

// StartDeliveries is PrepareDeliveries followed by the first attempt of
// every fresh delivery, made concurrently, their rows written in one
// transaction and one INSERT: one activity, and two transactions, per
// event however many webhooks it has (up to PrepareInput.Inline; above
// that it only prepares, as PrepareDeliveries does).
//
// A retry of this activity (a crash, or the database away before the
// rows commit) prepares the same deliveries and makes again only the
// attempts that were not recorded: a receiver may see such an attempt
// twice, with the same webhook-id, as with AttemptDelivery.
func (a *Activities) StartDeliveries(ctx context.Context, in PrepareInput) (FirstAttemptsResult, error) {
	prep, ds, err := a.snapshot(ctx, in)
	if err != nil || len(ds) == 0 {
		return FirstAttemptsResult{PrepareResult: prep}, err
	}
	// The rows just created (or, on a retry, read) are the deliveries as
	// they stand: only their webhooks and payload are still to load, and
	// the webhooks give the hosts the workflow's summaries name.
	targets, err := a.store.DeliveryTargets(ctx, ds)
	if err != nil {
		return FirstAttemptsResult{}, activityError(err)
	}
	byID := make(map[string]*models.DeliveryTarget, len(targets))
	for _, t := range targets {
		byID[t.Delivery.ID] = t
	}
	out := FirstAttemptsResult{PrepareResult: prep, First: make([]AttemptResult, len(ds))}
	out.Deliveries = make([]DeliveryRef, len(ds))
	owner := activityRun(ctx).WorkflowID
	now := a.now()
	var todo []made
	for i, d := range ds {
		t := byID[d.ID]
		url := ""
		if t != nil {
			url = t.Webhook.URL
		}
		ref := a.ref(d, url)
		out.Deliveries[i] = ref
		if _, settled := ref.Settled(); settled || t == nil || ref.FirstAttempt > 1 || ref.NotBefore.After(now) {
			continue // not a fresh delivery: the workflow drives it
		}
		res, done, err := a.gate(ctx, t, a.firstAttempt(d.ID, owner))
		if err != nil {
			return FirstAttemptsResult{}, err
		}
		if done {
			out.First[i] = res
			continue
		}
		todo = append(todo, made{i: i, t: t})
	}
	// One transaction takes the turn of every (webhook, asset) to attempt;
	// a delivery that must wait or is superseded goes back to the
	// workflow, which drives it like any other.
	if todo, err = a.firstTurns(ctx, todo, &out); err != nil {
		return FirstAttemptsResult{}, err
	}
	var wg sync.WaitGroup
	for k := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := &todo[k]
			m.rec, m.res = a.attempt(ctx, m.t, a.firstAttempt(m.t.Delivery.ID, owner))
		}()
	}
	wg.Wait()
	recs := make([]models.AttemptRecord, len(todo))
	for k, m := range todo {
		recs[k] = m.rec
	}
	if err := a.store.RecordAttempts(ctx, recs); err != nil {
		return FirstAttemptsResult{}, activityError(fmt.Errorf("record the first attempts of event %s: %w", in.EventID, err))
	}
	for _, m := range todo {
		a.recorded(ctx, m.t, m.rec, m.res)
		out.First[m.i] = m.res
	}
	return out, nil
}

// made is one first attempt StartDeliveries makes: the delivery's index
// in the result, its target, and once made its record and result.
type made struct {
	i   int
	t   *models.DeliveryTarget
	rec models.AttemptRecord
	res AttemptResult
}

// firstTurns takes the turns of the first attempts todo and returns those
// that got theirs; the others' results (superseded, or OutcomeWait) are
// set in out.
func (a *Activities) firstTurns(ctx context.Context, todo []made, out *FirstAttemptsResult) ([]made, error) {
	if len(todo) == 0 {
		return nil, nil
	}
	ts := make([]*models.DeliveryTarget, len(todo))
	for k, m := range todo {
		ts[k] = m.t
	}
	turns, err := a.store.TakeTurns(ctx, ts, false, a.turnLease())
	if err != nil {
		return nil, activityError(err)
	}
	kept := todo[:0]
	for k, m := range todo {
		if turns[k].Verdict == models.TurnGo {
			kept = append(kept, m)
			continue
		}
		res := turnResult(turns[k])
		if res.Outcome == OutcomeSuperseded {
			a.metrics.finished(models.DeliverySuperseded)
		}
		out.First[m.i] = res
	}
	return kept, nil
}

// firstAttempt is attempt 1 of a fresh delivery, as the workflow would
// ask for it: the same jittered wait before attempt 2.
func (a *Activities) firstAttempt(deliveryID, owner string) AttemptInput {
	in := AttemptInput{DeliveryID: deliveryID, Attempt: 1, Final: len(a.schedule) == 0, Owner: owner}
	if !in.Final {
		in.NextDelay = Jitter(a.schedule[0], deliveryID, 1)
	}
	return in
}
