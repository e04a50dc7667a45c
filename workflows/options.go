package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/streamhooks/streamhooks/activities"
)

// TaskQueue is the task queue of every streamhooks workflow and activity.
const TaskQueue = "streamhooks-deliveries"

// Timeouts and retry policies, named in one place. An attempt activity may
// run for the HTTP timeout plus time to load and record rows, so its
// StartToClose is the attempt timeout plus attemptRecordMargin: long enough
// for two database round trips, short enough that an attempt lost with a
// crashed worker is retried within seconds (TestWorkerKill9).
const (
	prepareTimeout      = 30 * time.Second
	attemptRecordMargin = 10 * time.Second
	// untilDone is the schedule-to-close timeout of local activities. The
	// SDK gives a local activity without one a schedule-to-close equal to
	// its start-to-close, which ended "retry forever" after one attempt's
	// time (issue 11). Ten years is "until the infrastructure is back".
	untilDone = 10 * 365 * 24 * time.Hour
	// infraPause is the wait before await starts an activity again.
	infraPause = time.Minute
)

// History bounds of a fan-out. One attempt costs at most eventsPerAttempt
// history events (activity scheduled/started/completed, timer
// started/fired, and the workflow tasks they wake), so a workflow driving
// batchSize deliveries stays within historyBudget events, well under
// Temporal's 51,200-event limit, for any schedule of up to 50 retries.
const (
	historyBudget    = 20000
	eventsPerAttempt = 11
	minBatch         = 10
	maxBatch         = 100
)

// infraRetry retries activity errors, which only ever mean the database or
// worker was unavailable: HTTP failures are results, never errors. It never
// gives up, so an outage delays deliveries instead of losing them.
var infraRetry = &temporal.RetryPolicy{
	InitialInterval:        time.Second,
	BackoffCoefficient:     2,
	MaximumInterval:        time.Minute,
	MaximumAttempts:        0,
	NonRetryableErrorTypes: []string{activities.ErrTypeNotFound},
}

// lowPriority is the task-queue priority of fan-out batch attempts (1 is
// the highest, 3 the default, 5 the lowest): a small event's retries are
// dispatched before a large fan-out's backlog.
const lowPriority = 4

// call is how one activity runs: as a local activity (the snapshot and
// first attempts, for latency) or a regular one (visible in Temporal UI),
// and for regular ones at which priority. Both kind are retried without
// limit on infrastructure errors and have no schedule-to-close limit.
type call struct {
	local bool
	// lowPriority queues a regular activity at lowPriority.
	lowPriority  bool
	startToClose time.Duration
	summary      string
}

// start schedules fn(in) with the options of c.
func (c call) start(ctx workflow.Context, fn, in any) workflow.Future {
	if c.local {
		// The SDK gives a local activity without a schedule-to-close one
		// equal to its start-to-close: untilDone keeps retrying.
		return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			ScheduleToCloseTimeout: untilDone, StartToCloseTimeout: c.startToClose, RetryPolicy: infraRetry, Summary: c.summary,
		}), fn, in)
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: c.startToClose, RetryPolicy: infraRetry, Summary: c.summary,
	})
	if c.lowPriority {
		ctx = workflow.WithPriority(ctx, temporal.Priority{PriorityKey: lowPriority})
	}
	return workflow.ExecuteActivity(ctx, fn, in)
}

// localFirstAttempt is the change id (workflow.GetVersion) of running the
// snapshot and first attempts as local activities.
const localFirstAttempt = "local-first-attempt"

// durableFanout is the change id of the issue-11 delivery path: fan-out in
// batch child workflows, attempts fenced by the owning workflow, resumed
// deliveries, and activities that never give up.
const durableFanout = "durable-fanout"
