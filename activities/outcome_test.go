package activities_test

import (
	"testing"
	"time"

	"github.com/streamhooks/streamhooks/activities"
	"github.com/streamhooks/streamhooks/models"
)

// TestDecide covers every branch of what an attempt's answer means.
func TestDecide(t *testing.T) {
	started := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	finished := started.Add(300 * time.Millisecond)
	at := func(d time.Duration) *time.Time { t := finished.Add(d); return &t }
	gone := "The endpoint answered 410 Gone on 2026-12-07T10:00:00Z."
	tests := []struct {
		name       string
		in         activities.AttemptInput
		status     int
		retryAfter time.Duration
		want       activities.Decision
	}{
		{"200 delivers", activities.AttemptInput{NextDelay: time.Minute}, 200, 0,
			activities.Decision{Outcome: activities.OutcomeDelivered, State: models.DeliverySucceeded}},
		{"204 on the final attempt delivers", activities.AttemptInput{Final: true}, 204, 0,
			activities.Decision{Outcome: activities.OutcomeDelivered, State: models.DeliverySucceeded}},
		{"299 delivers", activities.AttemptInput{}, 299, 0,
			activities.Decision{Outcome: activities.OutcomeDelivered, State: models.DeliverySucceeded}},
		{"300 is a failure", activities.AttemptInput{NextDelay: time.Minute}, 300, 0,
			activities.Decision{Outcome: activities.OutcomeRetry, State: models.DeliveryPending, NextAttemptAt: at(time.Minute)}},
		{"199 is a failure", activities.AttemptInput{NextDelay: time.Minute}, 199, 0,
			activities.Decision{Outcome: activities.OutcomeRetry, State: models.DeliveryPending, NextAttemptAt: at(time.Minute)}},
		{"500 retries after the planned wait", activities.AttemptInput{NextDelay: 5 * time.Second}, 500, 0,
			activities.Decision{Outcome: activities.OutcomeRetry, State: models.DeliveryPending, NextAttemptAt: at(5 * time.Second)}},
		{"no answer retries", activities.AttemptInput{NextDelay: 5 * time.Second}, 0, 0,
			activities.Decision{Outcome: activities.OutcomeRetry, State: models.DeliveryPending, NextAttemptAt: at(5 * time.Second)}},
		{"a longer Retry-After wins", activities.AttemptInput{NextDelay: 5 * time.Second}, 503, time.Hour,
			activities.Decision{Outcome: activities.OutcomeRetry, State: models.DeliveryPending, NextAttemptAt: at(time.Hour)}},
		{"a shorter Retry-After loses", activities.AttemptInput{NextDelay: 5 * time.Minute}, 429, time.Second,
			activities.Decision{Outcome: activities.OutcomeRetry, State: models.DeliveryPending, NextAttemptAt: at(5 * time.Minute)}},
		{"500 on the final attempt fails", activities.AttemptInput{Final: true}, 500, time.Hour,
			activities.Decision{Outcome: activities.OutcomeFailed, State: models.DeliveryFailed}},
		{"no answer on the final attempt fails", activities.AttemptInput{Final: true}, 0, 0,
			activities.Decision{Outcome: activities.OutcomeFailed, State: models.DeliveryFailed}},
		{"410 fails at once and deactivates", activities.AttemptInput{NextDelay: time.Minute}, 410, 0,
			activities.Decision{Outcome: activities.OutcomeFailed, State: models.DeliveryFailed, DeactivateReason: gone}},
		{"410 of a manual attempt deactivates too", activities.AttemptInput{Manual: true, NextDelay: time.Minute}, 410, 0,
			activities.Decision{Outcome: activities.OutcomeFailed, State: models.DeliveryFailed, DeactivateReason: gone}},
		{"410 to a ping never deactivates", activities.AttemptInput{Test: true, Final: true}, 410, 0,
			activities.Decision{Outcome: activities.OutcomeFailed, State: models.DeliveryFailed}},
		{"500 to a ping fails it (a ping is one final attempt)", activities.AttemptInput{Test: true, Final: true}, 500, 0,
			activities.Decision{Outcome: activities.OutcomeFailed, State: models.DeliveryFailed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := activities.Decide(tt.in, activities.Answer{StatusCode: tt.status, RetryAfter: tt.retryAfter, Started: started, Finished: finished})
			if got.Outcome != tt.want.Outcome || got.State != tt.want.State || got.DeactivateReason != tt.want.DeactivateReason {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if (got.NextAttemptAt == nil) != (tt.want.NextAttemptAt == nil) ||
				(got.NextAttemptAt != nil && !got.NextAttemptAt.Equal(*tt.want.NextAttemptAt)) {
				t.Fatalf("next attempt got %v, want %v", got.NextAttemptAt, tt.want.NextAttemptAt)
			}
		})
	}
}

// TestSettled: only a final state settles a delivery, with its outcome.
func TestSettled(t *testing.T) {
	tests := []struct {
		state  models.DeliveryState
		want   activities.Outcome
		wantOK bool
	}{
		{"", "", false},
		{models.DeliveryPending, "", false},
		{models.DeliverySucceeded, activities.OutcomeDelivered, true},
		{models.DeliveryFailed, activities.OutcomeFailed, true},
		{models.DeliveryCancelled, activities.OutcomeCancelled, true},
	}
	for _, tt := range tests {
		got, ok := activities.DeliveryRef{State: tt.state}.Settled()
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("state %q: got %q, %v; want %q, %v", tt.state, got, ok, tt.want, tt.wantOK)
		}
	}
}
