package workflows_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/streamhooks/streamhooks/activities"
	"github.com/streamhooks/streamhooks/workflows"
)

var schedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute}

// call is one mocked attempt as the workflow made it.
type call struct {
	in activities.AttemptInput
	at time.Time
}

// run executes DeliverEvent with the given deliveries; answer decides each
// attempt's result. It returns the workflow result and the attempts made.
func run(t *testing.T, ids []string, answer func(in activities.AttemptInput) activities.AttemptResult) (workflows.DeliverEventResult, map[string][]call, time.Time) {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(&activities.Activities{})
	start := env.Now()
	refs := make([]activities.DeliveryRef, len(ids))
	for i, id := range ids {
		refs[i] = activities.DeliveryRef{ID: id, WebhookID: "w-" + id, Host: id + ".example"}
	}
	env.OnActivity("PrepareDeliveries", mock.Anything, activities.PrepareInput{EventID: "e1"}).
		Return(activities.PrepareResult{Deliveries: refs, Schedule: schedule, AttemptTimeout: 15 * time.Second}, nil)
	var mu sync.Mutex
	calls := map[string][]call{}
	env.OnActivity("AttemptDelivery", mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AttemptInput) (activities.AttemptResult, error) {
			mu.Lock()
			calls[in.DeliveryID] = append(calls[in.DeliveryID], call{in: in, at: env.Now()})
			mu.Unlock()
			return answer(in), nil
		})
	env.ExecuteWorkflow(workflows.DeliverEvent, workflows.DeliverEventInput{EventID: "e1", OrganizationID: "org"})
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	var res workflows.DeliverEventResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return res, calls, start
}

func result(outcome string) activities.AttemptResult {
	return activities.AttemptResult{Outcome: outcome}
}

func TestDeliverEvent(t *testing.T) {
	tests := []struct {
		name      string
		ids       []string
		answer    func(in activities.AttemptInput) activities.AttemptResult
		want      workflows.DeliverEventResult
		wantCalls map[string]int
		check     func(t *testing.T, calls map[string][]call, start time.Time)
	}{
		{
			name:      "success on the first attempt",
			ids:       []string{"d1", "d2"},
			answer:    func(activities.AttemptInput) activities.AttemptResult { return result(activities.OutcomeDelivered) },
			want:      workflows.DeliverEventResult{Succeeded: 2},
			wantCalls: map[string]int{"d1": 1, "d2": 1},
		},
		{
			name: "retry then success after the jittered first wait",
			ids:  []string{"d1"},
			answer: func(in activities.AttemptInput) activities.AttemptResult {
				if in.Attempt < 2 {
					return activities.AttemptResult{Outcome: activities.OutcomeRetry, StatusCode: 500}
				}
				return result(activities.OutcomeDelivered)
			},
			want:      workflows.DeliverEventResult{Succeeded: 1},
			wantCalls: map[string]int{"d1": 2},
			check: func(t *testing.T, calls map[string][]call, _ time.Time) {
				gap := calls["d1"][1].at.Sub(calls["d1"][0].at)
				if gap < 4*time.Second || gap > 6*time.Second {
					t.Fatalf("wait before attempt 2: got %v, want 5s ±20%%", gap)
				}
				if calls["d1"][0].in.NextDelay < 4*time.Second || calls["d1"][0].in.NextDelay > 6*time.Second {
					t.Fatalf("planned NextDelay %v, want 5s ±20%%", calls["d1"][0].in.NextDelay)
				}
			},
		},
		{
			name:      "exhaustion after the schedule",
			ids:       []string{"d1"},
			answer:    func(activities.AttemptInput) activities.AttemptResult { return result(activities.OutcomeRetry) },
			want:      workflows.DeliverEventResult{Failed: 1},
			wantCalls: map[string]int{"d1": 4},
			check: func(t *testing.T, calls map[string][]call, _ time.Time) {
				for i, c := range calls["d1"] {
					if c.in.Attempt != i+1 || c.in.Final != (i == 3) {
						t.Fatalf("attempt %d input %+v: want number %d, final only on the last", i, c.in, i+1)
					}
				}
			},
		},
		{
			name: "410 ends the delivery at once",
			ids:  []string{"d1"},
			answer: func(activities.AttemptInput) activities.AttemptResult {
				return activities.AttemptResult{Outcome: activities.OutcomeFailed, StatusCode: 410}
			},
			want:      workflows.DeliverEventResult{Failed: 1},
			wantCalls: map[string]int{"d1": 1},
		},
		{
			name: "Retry-After pushes the next attempt past the schedule",
			ids:  []string{"d1"},
			answer: func(in activities.AttemptInput) activities.AttemptResult {
				if in.Attempt == 1 {
					return activities.AttemptResult{Outcome: activities.OutcomeRetry, StatusCode: 503, RetryAfter: time.Hour}
				}
				return result(activities.OutcomeDelivered)
			},
			want:      workflows.DeliverEventResult{Succeeded: 1},
			wantCalls: map[string]int{"d1": 2},
			check: func(t *testing.T, calls map[string][]call, _ time.Time) {
				if gap := calls["d1"][1].at.Sub(calls["d1"][0].at); gap < time.Hour {
					t.Fatalf("wait after Retry-After: got %v, want at least 1h", gap)
				}
			},
		},
		{
			name: "webhook deleted mid-retry cancels",
			ids:  []string{"d1"},
			answer: func(in activities.AttemptInput) activities.AttemptResult {
				if in.Attempt == 1 {
					return result(activities.OutcomeRetry)
				}
				return result(activities.OutcomeCancelled)
			},
			want:      workflows.DeliverEventResult{Cancelled: 1},
			wantCalls: map[string]int{"d1": 2},
		},
		{
			name: "a dead endpoint does not delay a healthy one",
			ids:  []string{"dead", "healthy"},
			answer: func(in activities.AttemptInput) activities.AttemptResult {
				if in.DeliveryID == "dead" {
					return result(activities.OutcomeRetry)
				}
				return result(activities.OutcomeDelivered)
			},
			want:      workflows.DeliverEventResult{Succeeded: 1, Failed: 1},
			wantCalls: map[string]int{"dead": 4, "healthy": 1},
			check: func(t *testing.T, calls map[string][]call, start time.Time) {
				if at := calls["healthy"][0].at.Sub(start); at > time.Second {
					t.Fatalf("healthy endpoint first attempted after %v, want at once", at)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, calls, start := run(t, tt.ids, tt.answer)
			if res != tt.want {
				t.Fatalf("result: got %+v, want %+v", res, tt.want)
			}
			for id, n := range tt.wantCalls {
				if len(calls[id]) != n {
					t.Fatalf("attempts of %s: got %d, want %d", id, len(calls[id]), n)
				}
			}
			if tt.check != nil {
				tt.check(t, calls, start)
			}
		})
	}
}
