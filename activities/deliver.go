package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/streamhooks/streamhooks/egress"
	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/signature"
)

// ErrTypeNotFound is the non-retryable error type for a delivery or event
// that does not exist: retrying cannot help.
const ErrTypeNotFound = "NotFound"

// maxRetryAfter bounds how far a Retry-After header can push the next attempt.
const maxRetryAfter = 24 * time.Hour

// PrepareInput names the event whose deliveries to create.
type PrepareInput struct {
	EventID string
	// Inline is the most deliveries the result lists; above it only the
	// total is returned and batches load their own pages (LoadBatch), so
	// no single payload in history grows with the fan-out.
	Inline int
}

// DeliveryRef is what the workflow knows of one delivery: ids and the host
// for summaries, never the secret or the payload.
type DeliveryRef struct {
	ID        string
	WebhookID string
	Host      string
	// FirstAttempt is the number of the first attempt to make (attempt
	// numbers continue across manual redeliveries and resumed runs); 0
	// means 1.
	FirstAttempt int
	// ScheduleStart is the index in the retry schedule of the wait after
	// FirstAttempt: 0 for a fresh delivery or a manual redelivery, the
	// attempts already made for a resumed one.
	ScheduleStart int
	// NotBefore, when set, is the earliest time of the first attempt (a
	// resumed delivery keeps the wait it was in).
	NotBefore time.Time
	// State is the delivery's state when loaded; a final one is not
	// attempted again.
	State  models.DeliveryState
	Manual bool
	// Force makes the attempts even when a newer event of the asset was
	// sent to the webhook already (a forced redelivery, DESIGN §9).
	Force bool
}

// PrepareResult lists the deliveries of an event and the worker's retry
// settings, which thereby become part of the workflow's history.
type PrepareResult struct {
	// Total is the number of deliveries of the event.
	Total int
	// Deliveries lists them when Total <= PrepareInput.Inline.
	Deliveries     []DeliveryRef
	Schedule       []time.Duration
	AttemptTimeout time.Duration
}

// PrepareDeliveries snapshots the organization's active webhooks into one
// pending delivery each, owned by the calling workflow. It is idempotent: a
// retry, or a later run of the same workflow, gets the same set as it is
// now.
func (a *Activities) PrepareDeliveries(ctx context.Context, in PrepareInput) (PrepareResult, error) {
	out, ds, err := a.snapshot(ctx, in)
	if err != nil || ds == nil {
		return out, err
	}
	if out.Deliveries, err = a.refs(ctx, ds); err != nil {
		return PrepareResult{}, err
	}
	return out, nil
}

// snapshot creates the event's deliveries, owned by the calling workflow,
// and returns them unless there are more than in.Inline (nil then: only
// the total is listed).
func (a *Activities) snapshot(ctx context.Context, in PrepareInput) (PrepareResult, []models.Delivery, error) {
	ds, err := a.store.CreateDeliveries(ctx, in.EventID, activityRun(ctx))
	if err != nil {
		return PrepareResult{}, nil, activityError(err)
	}
	out := PrepareResult{Total: len(ds), Schedule: a.schedule, AttemptTimeout: a.attemptTimeout}
	if in.Inline > 0 && len(ds) > in.Inline {
		return out, nil, nil
	}
	return out, ds, nil
}

// activityRun is the workflow run of the activity of ctx; empty outside
// an activity (tests that call an activity directly).
func activityRun(ctx context.Context) models.WorkflowRun {
	if !activity.IsActivity(ctx) {
		return models.WorkflowRun{}
	}
	info := activity.GetInfo(ctx)
	return models.WorkflowRun{WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID}
}

// BatchInput names one page of an event's deliveries.
type BatchInput struct {
	EventID string
	Offset  int
	Limit   int
}

// LoadBatch returns one page of an event's deliveries (see
// models.Store.DeliveryPage), for the child workflow that drives it.
func (a *Activities) LoadBatch(ctx context.Context, in BatchInput) ([]DeliveryRef, error) {
	ds, err := a.store.DeliveryPage(ctx, in.EventID, in.Offset, in.Limit)
	if err != nil {
		return nil, activityError(err)
	}
	return a.refs(ctx, ds)
}

// refs describes deliveries for the workflow (see ref).
func (a *Activities) refs(ctx context.Context, ds []models.Delivery) ([]DeliveryRef, error) {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.WebhookID
	}
	urls, err := a.store.WebhookURLs(ctx, ids)
	if err != nil {
		return nil, activityError(err)
	}
	out := make([]DeliveryRef, len(ds))
	for i, d := range ds {
		out[i] = a.ref(d, urls[d.WebhookID])
	}
	return out, nil
}

// ref describes one delivery to its webhook's URL for the workflow: a
// delivery with attempts already made (a resumed run) continues after
// them, where the schedule was, not before its planned next attempt.
func (a *Activities) ref(d models.Delivery, url string) DeliveryRef {
	r := DeliveryRef{ID: d.ID, WebhookID: d.WebhookID, Host: hostOf(url), State: d.State}
	if d.AttemptCount > 0 {
		r.FirstAttempt = d.AttemptCount + 1
		r.ScheduleStart = min(d.AttemptCount, len(a.schedule))
		if d.NextAttemptAt != nil {
			r.NotBefore = d.NextAttemptAt.UTC()
		}
	}
	return r
}

// RedeliveryInput names the delivery to send again.
type RedeliveryInput struct {
	DeliveryID string
	Force      bool // see DeliveryRef.Force
}

// PrepareRedelivery plans a manual redelivery: one delivery, attempts
// numbered after the ones it already has, the worker's schedule.
func (a *Activities) PrepareRedelivery(ctx context.Context, in RedeliveryInput) (PrepareResult, error) {
	t, err := a.store.LoadDeliveryTarget(ctx, in.DeliveryID)
	if err != nil {
		return PrepareResult{}, activityError(err)
	}
	ref := DeliveryRef{ID: t.Delivery.ID, WebhookID: t.Delivery.WebhookID, Host: hostOf(t.Webhook.URL),
		FirstAttempt: t.Delivery.AttemptCount + 1, Manual: true, Force: in.Force, State: t.Delivery.State}
	return PrepareResult{Deliveries: []DeliveryRef{ref}, Schedule: a.schedule, AttemptTimeout: a.attemptTimeout}, nil
}

// AttemptInput is one attempt of one delivery.
type AttemptInput struct {
	DeliveryID string
	Attempt    int           // 1-based
	Final      bool          // no retry follows a failure of this attempt
	NextDelay  time.Duration // the planned wait before the next attempt
	Manual     bool          // part of a redelivery asked for by the customer
	// Test marks a ping: sent even to an inactive webhook, and it never
	// changes the webhook (no 410 deactivation, no auto-disable clock).
	Test bool
	// Force: see DeliveryRef.Force.
	Force bool
	// Owner, when set, is the workflow id that must still drive the
	// delivery (its deliveries.workflow_id); otherwise nothing is sent and
	// the result is OutcomeReleased. This fences a resumed or redelivered
	// delivery against a run that lost it.
	Owner string
}

// AttemptResult is what the workflow needs to decide what comes next.
type AttemptResult struct {
	Outcome    Outcome
	StatusCode int
	ErrorClass models.ErrorClass
	RetryAfter time.Duration // from Retry-After on 429/503, else 0
	DurationMS int64
	// SupersededBy is, for OutcomeSuperseded, the sequence of the newer
	// event that superseded the delivery.
	SupersededBy int64 `json:",omitempty"`
	// Wait and InFlight are, for OutcomeWait, what blocks the turn: an
	// attempt in flight for at most Wait more, or (not InFlight) an
	// older delivery whose next attempt is Wait away.
	Wait     time.Duration `json:",omitempty"`
	InFlight bool          `json:",omitempty"`
}

// AttemptDelivery makes one HTTP attempt and records it. HTTP failures are
// results, not errors: an error means the attempt could not be made or
// recorded (database down) and Temporal retries the activity.
func (a *Activities) AttemptDelivery(ctx context.Context, in AttemptInput) (AttemptResult, error) {
	t, err := a.store.LoadDeliveryTarget(ctx, in.DeliveryID)
	if err != nil {
		return AttemptResult{}, activityError(err)
	}
	if res, done, err := a.gate(ctx, t, in); done || err != nil {
		return res, err
	}
	if res, done, err := a.takeTurn(ctx, t, in); done || err != nil {
		return res, err
	}
	rec, res := a.attempt(ctx, t, in)
	if err := a.store.RecordAttempt(ctx, rec); err != nil {
		return AttemptResult{}, activityError(err)
	}
	a.recorded(ctx, t, rec, res)
	return res, nil
}

// gate decides whether attempt in of t is to be made: not when the
// delivery is final, owned by another workflow, its webhook gone or
// inactive (the delivery is cancelled), or the attempt already recorded
// (a retry after a crash past the commit). done reports the result
// stands without an attempt.
func (a *Activities) gate(ctx context.Context, t *models.DeliveryTarget, in AttemptInput) (res AttemptResult, done bool, err error) {
	if t.Delivery.State != models.DeliveryPending {
		return AttemptResult{Outcome: outcomeOfState(t.Delivery.State), SupersededBy: t.Delivery.SupersededBy}, true, nil
	}
	if in.Owner != "" && t.Delivery.WorkflowID != in.Owner {
		return AttemptResult{Outcome: OutcomeReleased}, true, nil
	}
	if t.Webhook.DeletedAt.Valid || (!t.Webhook.IsActive && !in.Test) {
		if err := a.store.FinishDelivery(ctx, in.DeliveryID, models.DeliveryCancelled); err != nil {
			return AttemptResult{}, true, activityError(err)
		}
		a.metrics.finished(models.DeliveryCancelled)
		return AttemptResult{Outcome: OutcomeCancelled}, true, nil
	}
	if t.Delivery.AttemptCount >= in.Attempt {
		return AttemptResult{Outcome: outcomeOfState(t.Delivery.State)}, true, nil
	}
	return AttemptResult{}, false, nil
}

// attempt sends attempt in of t and decides what its answer means; the
// returned record is still to be stored.
func (a *Activities) attempt(ctx context.Context, t *models.DeliveryTarget, in AttemptInput) (models.AttemptRecord, AttemptResult) {
	row, res := a.send(ctx, t, in.Attempt)
	row.Manual = in.Manual
	d := Decide(in, Answer{StatusCode: res.StatusCode, RetryAfter: res.RetryAfter, Started: row.StartedAt, Finished: row.FinishedAt})
	res.Outcome = d.Outcome
	outcome := models.AttemptOutcome{State: d.State, NextAttemptAt: d.NextAttemptAt, DeactivateReason: d.DeactivateReason,
		DisableAfter: a.disableAfter, Test: in.Test}
	rec := models.AttemptRecord{Attempt: row, Outcome: outcome, WebhookID: t.Webhook.ID}
	if t.Sequence > 0 {
		rec.AssetID = t.AssetID // the turn TakeTurns gave it
	}
	return rec, res
}

// recorded counts and logs an attempt once its row is stored.
func (a *Activities) recorded(ctx context.Context, t *models.DeliveryTarget, rec models.AttemptRecord, res AttemptResult) {
	a.metrics.attempt(rec.Attempt, rec.Outcome.State, t.ReceivedAt)
	a.log.InfoContext(ctx, "delivery attempt", "deliveryID", t.Delivery.ID, "attempt", rec.Attempt.AttemptNumber,
		"statusCode", res.StatusCode, "errorClass", res.ErrorClass, "outcome", res.Outcome, "durationMS", res.DurationMS)
}

// send performs the HTTP request and builds the attempt row; what the
// answer means is Decide's to say.
func (a *Activities) send(ctx context.Context, t *models.DeliveryTarget, attempt int) (*models.DeliveryAttempt, AttemptResult) {
	start := a.now().UTC()
	ts := start.Unix()
	headers := http.Header{}
	headers.Set("Content-Type", "application/json")
	headers.Set("User-Agent", a.userAgent)
	headers.Set("x-streams-token", t.Webhook.SecretToken)
	if t.Sequence > 0 { // a ping has none
		headers.Set("x-streams-sequence", strconv.FormatInt(t.Sequence, 10))
	}
	headers.Set("webhook-id", t.Delivery.ID)
	headers.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	sig := signature.Sign([]byte(t.Webhook.SecretToken), t.Delivery.ID, ts, t.Payload)
	if prev, until := t.Webhook.PreviousSecretToken, t.Webhook.PreviousSecretExpiresAt; prev != "" && until != nil && start.Before(*until) {
		// A rotated secret's grace window (DESIGN §10): the new
		// signature first, then the old one, space-separated as
		// Standard Webhooks allows, so a receiver on either verifies.
		sig += " " + signature.Sign([]byte(prev), t.Delivery.ID, ts, t.Payload)
	}
	headers.Set("webhook-signature", sig)

	row := &models.DeliveryAttempt{
		DeliveryID: t.Delivery.ID, AttemptNumber: attempt, RequestURL: redactURL(t.Webhook.URL),
		RequestHeaders: maskedHeaders(headers), StartedAt: start,
	}
	res := AttemptResult{}
	ctx, cancel := context.WithTimeout(ctx, a.attemptTimeout)
	defer cancel()
	// The host is judged by the client's dialer (package egress): spelling,
	// names and every DNS answer, before any connection is made.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.Webhook.URL, bytes.NewReader(t.Payload))
	if err == nil {
		req.Header = headers
		var resp *http.Response
		resp, err = a.client.Do(req)
		if err == nil {
			body, readErr := readCapped(resp.Body, MaxStoredBody)
			_ = resp.Body.Close()
			row.ResponseStatus, res.StatusCode = resp.StatusCode, resp.StatusCode
			row.ResponseHeaders = jsonHeaders(resp.Header)
			row.ResponseBody = body
			if !delivered(resp.StatusCode) {
				res.ErrorClass = models.ErrorClassHTTP
				row.ErrorMessage = fmt.Sprintf("The endpoint answered %d %s.", resp.StatusCode, http.StatusText(resp.StatusCode))
				if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
					res.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), start)
				}
			}
			if readErr != nil && !delivered(resp.StatusCode) {
				row.ErrorMessage += " Reading the body failed: " + safeError(readErr)
			}
		}
	}
	if err != nil {
		res.ErrorClass, row.ErrorMessage = classifyError(err)
	}
	row.ErrorClass = res.ErrorClass
	row.FinishedAt = a.now().UTC()
	row.DurationMS = row.FinishedAt.Sub(start).Milliseconds()
	res.DurationMS = row.DurationMS
	return row, res
}

// readCapped reads at most limit bytes of a body, then drains a little more
// so the connection can be reused, without ever reading an endless body.
func readCapped(r io.Reader, limit int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, limit))
	if err == nil {
		_, _ = io.CopyN(io.Discard, r, 4*limit)
	}
	return body, err
}

// classifyError maps a transport error to an error class and a message that
// is safe to show to customers (no secrets, no internal addresses beyond the
// target's own).
func classifyError(err error) (models.ErrorClass, string) {
	var b *egress.BlockedError
	if errors.As(err, &b) {
		return models.ErrorClassBlocked, "Blocked: " + b.Error() + "."
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return models.ErrorClassDNS, "DNS lookup failed for " + dnsErr.Name + "."
	}
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()) {
		return models.ErrorClassTimeout, "The endpoint did not answer in time."
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) && urlErr.Err != nil {
		return models.ErrorClassConnection, "Connection failed: " + safeError(urlErr.Err)
	}
	return models.ErrorClassConnection, "Connection failed: " + safeError(err)
}

// safeError shortens an error text for storage.
func safeError(err error) string {
	s := err.Error()
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date, bounded.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = at.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// maskedHeaders serialises request headers with the secret masked.
func maskedHeaders(h http.Header) string {
	c := h.Clone()
	if c.Get("x-streams-token") != "" {
		c.Set("x-streams-token", "********")
	}
	return jsonHeaders(c)
}

func jsonHeaders(h http.Header) string {
	flat := make(map[string]string, len(h))
	for k, v := range h {
		flat[k] = strings.Join(v, ", ")
	}
	b, _ := json.Marshal(flat)
	return string(b)
}

// redactURL hides userinfo passwords in stored URLs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Redacted()
}

// hostOf returns the host[:port] of a URL for summaries.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// activityError turns store errors into activity errors: a missing row is
// non-retryable, anything else (database down) is retried by Temporal.
func activityError(err error) error {
	if err == nil {
		return nil
	}
	if models.ErrorCode(err) == models.ENOTFOUND {
		return temporal.NewNonRetryableApplicationError(models.ErrorMessage(err), ErrTypeNotFound, nil)
	}
	return err
}

// turnPatience is how long AttemptDelivery waits, polling, for an attempt
// of the same (webhook, asset) in flight to end before it hands the wait
// back to the workflow (OutcomeWait). It fits in the margin of the
// activity's start-to-close timeout beyond the attempt's own.
const turnPatience = 4 * time.Second

// turnLease is how long a turn is held for one attempt: longer than the
// attempt activity may run (the attempt timeout and the workflow's
// 10-second record margin), so the holder's attempt is over, even on a
// worker that died, before another delivery of its (webhook, asset) may
// start one.
func (a *Activities) turnLease() time.Duration { return a.attemptTimeout + 15*time.Second }

// takeTurn takes t's turn for attempt in (models.Store.TakeTurns). done
// reports that no attempt is to be made and res says why: superseded,
// settled meanwhile, or OutcomeWait. An attempt of the same (webhook,
// asset) in flight is waited for here, up to turnPatience.
func (a *Activities) takeTurn(ctx context.Context, t *models.DeliveryTarget, in AttemptInput) (res AttemptResult, done bool, err error) {
	give := a.now().Add(turnPatience)
	pause := 10 * time.Millisecond
	for {
		turns, err := a.store.TakeTurns(ctx, []*models.DeliveryTarget{t}, in.Force, a.turnLease())
		if err != nil {
			return AttemptResult{}, true, activityError(err)
		}
		turn := turns[0]
		switch turn.Verdict {
		case models.TurnGo:
			return AttemptResult{}, false, nil
		case models.TurnSettled:
			// Superseded or cancelled since it was loaded.
			d, err := a.store.GetDelivery(ctx, t.Delivery.ID)
			if err != nil {
				return AttemptResult{}, true, activityError(err)
			}
			return AttemptResult{Outcome: outcomeOfState(d.State), SupersededBy: d.SupersededBy}, true, nil
		}
		res := turnResult(turn)
		if res.Outcome == OutcomeSuperseded {
			a.metrics.finished(models.DeliverySuperseded)
		}
		if res.Outcome != OutcomeWait || !turn.InFlight || a.now().Add(pause).After(give) {
			return res, true, nil
		}
		select {
		case <-ctx.Done():
			return AttemptResult{}, true, activityError(ctx.Err())
		case <-time.After(pause):
		}
		pause = min(2*pause, 200*time.Millisecond)
	}
}

// turnResult is the result of an attempt its turn did not let happen.
func turnResult(t models.Turn) AttemptResult {
	switch t.Verdict {
	case models.TurnSuperseded:
		return AttemptResult{Outcome: OutcomeSuperseded, SupersededBy: t.SupersededBy}
	case models.TurnWait:
		return AttemptResult{Outcome: OutcomeWait, Wait: t.Wait, InFlight: t.InFlight}
	}
	// Settled: the workflow's next attempt reads what it became.
	return AttemptResult{Outcome: OutcomeWait}
}
