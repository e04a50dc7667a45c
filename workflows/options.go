package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"

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
	finishTimeout       = 30 * time.Second
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

// localFirstAttempt is the change id (workflow.GetVersion) of running the
// snapshot and first attempts as local activities.
const localFirstAttempt = "local-first-attempt"

// jitterFraction is the ±share of each scheduled wait that is randomised,
// so retries of many deliveries do not hit an endpoint in lock-step.
const jitterFraction = 0.2
