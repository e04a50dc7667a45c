package activities

import (
	"net/http"
	"time"

	"github.com/streamhooks/streamhooks/models"
)

// Outcome is what an attempt means for the workflow that drives the
// delivery.
type Outcome string

// Attempt outcomes, as returned to the workflow.
const (
	OutcomeDelivered Outcome = "delivered" // 2xx: the delivery succeeded
	OutcomeRetry     Outcome = "retry"     // failed attempt; try again later
	OutcomeFailed    Outcome = "failed"    // failed for good (410, or the last attempt)
	OutcomeCancelled Outcome = "cancelled" // the webhook was deleted or deactivated
	// OutcomeReleased: another workflow drives the delivery now (a manual
	// redelivery, or a resumed run); this one must leave it alone.
	OutcomeReleased Outcome = "released"
	// OutcomeSuperseded: a newer event of the asset was sent, or is
	// ready, for the webhook; the delivery ended without an attempt
	// (DESIGN §9). AttemptResult.SupersededBy names the newer sequence.
	OutcomeSuperseded Outcome = "superseded"
	// OutcomeWait: it is not the delivery's turn yet (another attempt of
	// the asset to the webhook is in flight, or, in delivery_mode all, an
	// older one is pending). No attempt was made; ask again after
	// AttemptResult.Wait, with the same attempt number.
	OutcomeWait Outcome = "wait"
)

// Answer is what one HTTP attempt got: the status code (0 when no answer
// came: a transport error), the Retry-After wait the endpoint asked for,
// and when the attempt started and finished.
type Answer struct {
	StatusCode int
	RetryAfter time.Duration
	Started    time.Time
	Finished   time.Time
}

// Decision is what an attempt's answer does to its delivery.
type Decision struct {
	Outcome Outcome
	// State is the delivery's new state; pending to keep going.
	State models.DeliveryState
	// NextAttemptAt is, when pending, the earliest next attempt: the
	// planned wait or the endpoint's Retry-After, whichever is longer.
	NextAttemptAt *time.Time
	// DeactivateReason, when set, deactivates the webhook (410 Gone).
	DeactivateReason string
}

// Decide is the one place that says what an attempt's answer means: a 2xx
// delivers; a 410 fails the delivery for good and deactivates the webhook
// (not for a ping, which never changes the webhook); any other failure
// fails the delivery on its final attempt and otherwise schedules the
// next one. Auto-disable after a long failure streak needs the webhook's
// history and is applied where the attempt is recorded
// (models.Store.RecordAttempt).
func Decide(in AttemptInput, a Answer) Decision {
	switch {
	case delivered(a.StatusCode):
		return Decision{Outcome: OutcomeDelivered, State: models.DeliverySucceeded}
	case a.StatusCode == http.StatusGone && !in.Test:
		return Decision{Outcome: OutcomeFailed, State: models.DeliveryFailed,
			DeactivateReason: "The endpoint answered 410 Gone on " + a.Started.Format(time.RFC3339) + "."}
	case in.Final:
		return Decision{Outcome: OutcomeFailed, State: models.DeliveryFailed}
	}
	next := a.Finished.Add(max(in.NextDelay, a.RetryAfter))
	return Decision{Outcome: OutcomeRetry, State: models.DeliveryPending, NextAttemptAt: &next}
}

// delivered reports whether a status code is a successful answer.
func delivered(status int) bool { return status >= 200 && status < 300 }

// outcomeOfState is the outcome of a delivery already in state: a final
// state is not attempted again.
func outcomeOfState(state models.DeliveryState) Outcome {
	switch state {
	case models.DeliverySucceeded:
		return OutcomeDelivered
	case models.DeliveryFailed:
		return OutcomeFailed
	case models.DeliveryCancelled:
		return OutcomeCancelled
	case models.DeliverySuperseded:
		return OutcomeSuperseded
	}
	return OutcomeRetry
}

// Settled reports whether the delivery was final when loaded, and with
// which outcome; a settled delivery is not attempted again.
func (d DeliveryRef) Settled() (Outcome, bool) {
	if d.State == "" || !d.State.Final() {
		return "", false
	}
	return outcomeOfState(d.State), true
}
