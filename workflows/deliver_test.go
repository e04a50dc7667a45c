package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
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

// eventWorkflows are the two event workflow types: DeliverAssetEvent,
// which new events start, and DeliverEvent, which earlier releases
// started. Each test of an event runs against both.
var eventWorkflows = []string{"DeliverAssetEvent", "DeliverEvent"}

// forEachEventWorkflow runs f as a subtest per event workflow type.
func forEachEventWorkflow(t *testing.T, f func(t *testing.T, wf string)) {
	for _, wf := range eventWorkflows {
		t.Run(wf, func(t *testing.T) { f(t, wf) })
	}
}

// attemptFunc is a mocked AttemptDelivery.
type attemptFunc func(ctx context.Context, in activities.AttemptInput) (activities.AttemptResult, error)

// onPrepare mocks the snapshot of workflow type wf: PrepareDeliveries for
// DeliverEvent; for DeliverAssetEvent StartDeliveries, which also makes
// the first attempt of every fresh delivery through attempt, with the
// input AttemptDelivery would have had. prepare returns the snapshot.
func onPrepare(env *testsuite.TestWorkflowEnvironment, wf string, in any, prepare func() (activities.PrepareResult, error), attempt attemptFunc) {
	if wf == "DeliverEvent" {
		env.OnActivity("PrepareDeliveries", mock.Anything, in).Return(
			func(context.Context, activities.PrepareInput) (activities.PrepareResult, error) { return prepare() })
		return
	}
	env.OnActivity("StartDeliveries", mock.Anything, in).Return(
		func(ctx context.Context, pin activities.PrepareInput) (activities.FirstAttemptsResult, error) {
			prep, err := prepare()
			if err != nil {
				return activities.FirstAttemptsResult{}, err
			}
			out := activities.FirstAttemptsResult{PrepareResult: prep}
			if len(prep.Deliveries) == 0 {
				return out, nil
			}
			out.First = make([]activities.AttemptResult, len(prep.Deliveries))
			for i, d := range prep.Deliveries {
				if _, settled := d.Settled(); settled || d.FirstAttempt > 1 || !d.NotBefore.IsZero() {
					continue
				}
				ain := activities.AttemptInput{DeliveryID: d.ID, Attempt: 1, Final: len(prep.Schedule) == 0,
					Owner: activity.GetInfo(ctx).WorkflowExecution.ID}
				if !ain.Final {
					ain.NextDelay = activities.Jitter(prep.Schedule[0], d.ID, 1)
				}
				r, err := attempt(ctx, ain)
				if err != nil {
					return activities.FirstAttemptsResult{}, err
				}
				out.First[i] = r
			}
			return out, nil
		})
}

// run executes DeliverEvent with the given deliveries; answer decides each
// attempt's result. It returns the workflow result and the attempts made.
func run(t *testing.T, wf string, ids []string, answer func(in activities.AttemptInput) activities.AttemptResult) (workflows.DeliverEventResult, map[string][]call, time.Time) {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(&activities.Activities{})
	env.RegisterWorkflow(workflows.DeliverAssetEvent)
	env.RegisterWorkflow(workflows.DeliverEvent)
	start := env.Now()
	refs := make([]activities.DeliveryRef, len(ids))
	for i, id := range ids {
		refs[i] = activities.DeliveryRef{ID: id, WebhookID: "w-" + id, Host: id + ".example"}
	}
	var mu sync.Mutex
	calls := map[string][]call{}
	attempt := func(_ context.Context, in activities.AttemptInput) (activities.AttemptResult, error) {
		mu.Lock()
		calls[in.DeliveryID] = append(calls[in.DeliveryID], call{in: in, at: env.Now()})
		mu.Unlock()
		return answer(in), nil
	}
	onPrepare(env, wf, activities.PrepareInput{EventID: "e1", Inline: 100}, func() (activities.PrepareResult, error) {
		return activities.PrepareResult{Total: len(refs), Deliveries: refs, Schedule: schedule, AttemptTimeout: 15 * time.Second}, nil
	}, attempt)
	env.OnActivity("AttemptDelivery", mock.Anything, mock.Anything).Return(attempt)
	env.ExecuteWorkflow(wf, workflows.DeliverEventInput{EventID: "e1", OrganizationID: "org"})
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

func result(outcome activities.Outcome) activities.AttemptResult {
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
	forEachEventWorkflow(t, func(t *testing.T, wf string) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				res, calls, start := run(t, wf, tt.ids, tt.answer)
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
	})
}

// TestInfrastructureErrorsNeverEndADelivery: the snapshot and the attempts
// fail with infrastructure errors (database down) for longer than any
// timeout, local and regular; the workflow neither fails nor gives up.
func TestInfrastructureErrorsNeverEndADelivery(t *testing.T) {
	forEachEventWorkflow(t, testInfrastructureErrors)
}

func testInfrastructureErrors(t *testing.T, wf string) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(&activities.Activities{})
	env.RegisterWorkflow(workflows.DeliverAssetEvent)
	env.RegisterWorkflow(workflows.DeliverEvent)
	start := env.Now()
	outage := 3 * time.Hour
	down := errors.New("The database is unavailable.")
	var prepares, attempts int
	attempt := func(_ context.Context, in activities.AttemptInput) (activities.AttemptResult, error) {
		attempts++
		if env.Now().Sub(start) < 2*outage {
			return activities.AttemptResult{}, down
		}
		return result(activities.OutcomeDelivered), nil
	}
	onPrepare(env, wf, mock.Anything, func() (activities.PrepareResult, error) {
		prepares++
		if env.Now().Sub(start) < outage {
			return activities.PrepareResult{}, down
		}
		return activities.PrepareResult{Total: 1, Deliveries: []activities.DeliveryRef{{ID: "d1"}}, Schedule: schedule, AttemptTimeout: time.Second}, nil
	}, attempt)
	env.OnActivity("AttemptDelivery", mock.Anything, mock.Anything).Return(attempt)
	env.ExecuteWorkflow(wf, workflows.DeliverEventInput{EventID: "e1", OrganizationID: "org"})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("workflow: completed %v, error %v; want completed without error", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	var res workflows.DeliverEventResult
	if err := env.GetWorkflowResult(&res); err != nil || res != (workflows.DeliverEventResult{Succeeded: 1}) {
		t.Fatalf("result %+v, %v; want 1 succeeded", res, err)
	}
	if prepares < 10 || attempts < 10 {
		t.Fatalf("prepares %d, attempts %d: want each retried through the outage (>= 10)", prepares, attempts)
	}
}

// TestFanoutInBatches: above one batch the event runs child workflows of
// at most 100 deliveries, each loading its own page, every delivery
// attempted once and fenced by the event workflow's id.
func TestFanoutInBatches(t *testing.T) {
	forEachEventWorkflow(t, testFanout)
}

func testFanout(t *testing.T, wf string) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(&activities.Activities{})
	env.RegisterWorkflow(workflows.DeliverBatch)
	env.RegisterWorkflow(workflows.DeliverAssetEvent)
	env.RegisterWorkflow(workflows.DeliverEvent)
	const total = 250
	ids := make([]string, total)
	for i := range ids {
		ids[i] = fmt.Sprintf("d%03d", i)
	}
	onPrepare(env, wf, mock.Anything, func() (activities.PrepareResult, error) {
		return activities.PrepareResult{Total: total, Schedule: schedule, AttemptTimeout: time.Second}, nil
	}, nil)
	var mu sync.Mutex
	pages := map[int]int{}
	env.OnActivity("LoadBatch", mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.BatchInput) ([]activities.DeliveryRef, error) {
			mu.Lock()
			pages[in.Offset] = in.Limit
			mu.Unlock()
			var out []activities.DeliveryRef
			for _, id := range ids[in.Offset:min(in.Offset+in.Limit, total)] {
				out = append(out, activities.DeliveryRef{ID: id})
			}
			return out, nil
		})
	seen := map[string]int{}
	owners := map[string]bool{}
	env.OnActivity("AttemptDelivery", mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AttemptInput) (activities.AttemptResult, error) {
			mu.Lock()
			defer mu.Unlock()
			seen[in.DeliveryID]++
			owners[in.Owner] = true
			return result(activities.OutcomeDelivered), nil
		})
	env.ExecuteWorkflow(wf, workflows.DeliverEventInput{EventID: "e1", OrganizationID: "org"})
	var res workflows.DeliverEventResult
	if err := env.GetWorkflowResult(&res); err != nil || res.Succeeded != total {
		t.Fatalf("result %+v, %v; want %d succeeded", res, err, total)
	}
	if len(pages) != 3 || pages[0] != 100 || pages[100] != 100 || pages[200] != 100 {
		t.Fatalf("pages loaded %v, want offsets 0, 100, 200 of 100", pages)
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Fatalf("%s attempted %d times, want 1", id, seen[id])
		}
	}
	if len(owners) != 1 || owners[""] {
		t.Fatalf("owners %v, want the one event workflow id", owners)
	}
}

// TestResumedAndReleasedDeliveries: a resumed delivery continues after
// its attempts, no earlier than planned, on the rest of the schedule; a
// delivery another workflow took over is released; a finished one is not
// attempted.
func TestResumedAndReleasedDeliveries(t *testing.T) {
	forEachEventWorkflow(t, testResumedAndReleased)
}

func testResumedAndReleased(t *testing.T, wf string) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(&activities.Activities{})
	env.RegisterWorkflow(workflows.DeliverAssetEvent)
	env.RegisterWorkflow(workflows.DeliverEvent)
	start := env.Now()
	refs := []activities.DeliveryRef{
		{ID: "resumed", FirstAttempt: 3, ScheduleStart: 2, NotBefore: start.Add(time.Hour)},
		{ID: "taken"},
		{ID: "done", State: "succeeded"},
	}
	var calls []call
	attempt := func(_ context.Context, in activities.AttemptInput) (activities.AttemptResult, error) {
		calls = append(calls, call{in: in, at: env.Now()})
		if in.DeliveryID == "taken" {
			return result(activities.OutcomeReleased), nil
		}
		return result(activities.OutcomeRetry), nil
	}
	onPrepare(env, wf, mock.Anything, func() (activities.PrepareResult, error) {
		return activities.PrepareResult{Total: 3, Deliveries: refs, Schedule: schedule, AttemptTimeout: time.Second}, nil
	}, attempt)
	env.OnActivity("AttemptDelivery", mock.Anything, mock.Anything).Return(attempt)
	env.ExecuteWorkflow(wf, workflows.DeliverEventInput{EventID: "e1", OrganizationID: "org"})
	var res workflows.DeliverEventResult
	if err := env.GetWorkflowResult(&res); err != nil || res != (workflows.DeliverEventResult{Succeeded: 1, Failed: 1, Released: 1}) {
		t.Fatalf("result %+v, %v; want 1 succeeded (done), 1 failed (resumed), 1 released", res, err)
	}
	var resumed []call
	for _, c := range calls {
		if c.in.DeliveryID == "done" {
			t.Fatal("a finished delivery was attempted")
		}
		if c.in.DeliveryID == "resumed" {
			resumed = append(resumed, c)
		}
	}
	if len(resumed) != 2 || resumed[0].in.Attempt != 3 || resumed[1].in.Attempt != 4 || !resumed[1].in.Final || resumed[0].in.Final {
		t.Fatalf("resumed attempts %+v, want 3 then final 4 (one wait left of three)", resumed)
	}
	if at := resumed[0].at.Sub(start); at < time.Hour {
		t.Fatalf("resumed delivery attempted after %v, want no earlier than its planned 1h", at)
	}
	if gap := resumed[1].at.Sub(resumed[0].at); gap < 24*time.Minute || gap > 36*time.Minute {
		t.Fatalf("wait between resumed attempts %v, want the schedule's third wait (30m ±20%%)", gap)
	}
}

// TestRedeliver: a manual redelivery numbers its attempts after the
// existing ones, marks them manual, fences them by its own workflow id,
// retries on the worker's schedule and counts how the delivery ended; a
// delivery that is gone ends the workflow quietly.
func TestRedeliver(t *testing.T) {
	tests := []struct {
		name     string
		answers  []activities.Outcome // per attempt; the last repeats
		missing  bool
		want     workflows.DeliverEventResult
		attempts int
	}{
		{name: "delivered at once", answers: []activities.Outcome{activities.OutcomeDelivered},
			want: workflows.DeliverEventResult{Succeeded: 1}, attempts: 1},
		{name: "delivered after two retries", answers: []activities.Outcome{activities.OutcomeRetry, activities.OutcomeRetry, activities.OutcomeDelivered},
			want: workflows.DeliverEventResult{Succeeded: 1}, attempts: 3},
		{name: "every attempt fails", answers: []activities.Outcome{activities.OutcomeRetry},
			want: workflows.DeliverEventResult{Failed: 1}, attempts: len(schedule) + 1},
		{name: "webhook deactivated meanwhile", answers: []activities.Outcome{activities.OutcomeCancelled},
			want: workflows.DeliverEventResult{Cancelled: 1}, attempts: 1},
		{name: "delivery gone", missing: true, want: workflows.DeliverEventResult{}, attempts: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ts testsuite.WorkflowTestSuite
			env := ts.NewTestWorkflowEnvironment()
			env.RegisterActivity(&activities.Activities{})
			env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.RedeliveryID("msg_1", 3)})
			prep := env.OnActivity("PrepareRedelivery", mock.Anything, activities.RedeliveryInput{DeliveryID: "msg_1"})
			if tt.missing {
				prep.Return(activities.PrepareResult{}, temporal.NewNonRetryableApplicationError("Delivery not found.", activities.ErrTypeNotFound, nil))
			} else {
				ref := activities.DeliveryRef{ID: "msg_1", WebhookID: "w1", Host: "h.example", FirstAttempt: 3, Manual: true, State: "pending"}
				prep.Return(activities.PrepareResult{Deliveries: []activities.DeliveryRef{ref}, Schedule: schedule, AttemptTimeout: time.Second}, nil)
			}
			var ins []activities.AttemptInput
			env.OnActivity("AttemptDelivery", mock.Anything, mock.Anything).Return(
				func(_ context.Context, in activities.AttemptInput) (activities.AttemptResult, error) {
					ins = append(ins, in)
					return result(tt.answers[min(len(ins), len(tt.answers))-1]), nil
				})
			env.ExecuteWorkflow(workflows.Redeliver, workflows.RedeliverInput{DeliveryID: "msg_1", OrganizationID: "org"})
			var res workflows.DeliverEventResult
			if err := env.GetWorkflowResult(&res); err != nil || res != tt.want {
				t.Fatalf("result %+v, %v; want %+v", res, err, tt.want)
			}
			if len(ins) != tt.attempts {
				t.Fatalf("got %d attempts, want %d", len(ins), tt.attempts)
			}
			for i, in := range ins {
				if in.Attempt != 3+i || !in.Manual || in.Owner != workflows.RedeliveryID("msg_1", 3) || in.Final != (i == len(schedule)) {
					t.Fatalf("attempt %d: got %+v, want number %d, manual, owned by the redelivery, final only after the schedule", i, in, 3+i)
				}
			}
		})
	}
}
