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
	prep, err := a.PrepareDeliveries(ctx, in)
	if err != nil || len(prep.Deliveries) == 0 {
		return FirstAttemptsResult{PrepareResult: prep}, err
	}
	out := FirstAttemptsResult{PrepareResult: prep, First: make([]AttemptResult, len(prep.Deliveries))}
	now := a.now()
	var ids []string
	index := make(map[string]int, len(prep.Deliveries))
	for i, d := range prep.Deliveries {
		if _, settled := d.Settled(); settled || d.FirstAttempt > 1 || d.NotBefore.After(now) {
			continue
		}
		ids = append(ids, d.ID)
		index[d.ID] = i
	}
	if len(ids) == 0 {
		return out, nil
	}
	targets, err := a.store.LoadDeliveryTargets(ctx, ids)
	if err != nil {
		return FirstAttemptsResult{}, activityError(err)
	}
	owner := activityWorkflowID(ctx)
	type made struct {
		t   *models.DeliveryTarget
		rec models.AttemptRecord
		res AttemptResult
	}
	var todo []made
	for _, t := range targets {
		in := a.firstAttempt(t.Delivery.ID, owner)
		res, done, err := a.gate(ctx, t, in)
		if err != nil {
			return FirstAttemptsResult{}, err
		}
		if done {
			out.First[index[t.Delivery.ID]] = res
			continue
		}
		todo = append(todo, made{t: t})
	}
	var wg sync.WaitGroup
	for i := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := &todo[i]
			m.rec, m.res = a.attempt(ctx, m.t, a.firstAttempt(m.t.Delivery.ID, owner))
		}()
	}
	wg.Wait()
	recs := make([]models.AttemptRecord, len(todo))
	for i, m := range todo {
		recs[i] = m.rec
	}
	if err := a.store.RecordAttempts(ctx, recs); err != nil {
		return FirstAttemptsResult{}, activityError(fmt.Errorf("record the first attempts of event %s: %w", in.EventID, err))
	}
	for _, m := range todo {
		a.recorded(ctx, m.t, m.rec, m.res)
		out.First[index[m.t.Delivery.ID]] = m.res
	}
	return out, nil
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
