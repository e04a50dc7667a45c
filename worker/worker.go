// Package worker builds the Temporal worker that runs streamhooks workflows
// and activities.
package worker

import (
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/streamhooks/streamhooks/activities"
	"github.com/streamhooks/streamhooks/workflows"
)

// Default slot counts. They bound a worker's memory whatever the fan-out:
// an attempt holds at most the payload (1 MiB), a 64 KiB response body and
// a connection, so 200 attempts in flight stay within about 250 MiB even
// at the payload limit; everything beyond waits in Temporal's task queue,
// not in the worker.
const (
	DefaultMaxConcurrentActivities      = 200
	DefaultMaxConcurrentLocalActivities = 200
)

// Options tune the worker; zero values take the defaults above and the
// SDK's.
type Options struct {
	TaskQueue                    string
	MaxConcurrentActivities      int
	MaxConcurrentLocalActivities int
	MaxConcurrentWorkflowTasks   int
	MaxConcurrentActivityPollers int
	MaxConcurrentWorkflowPollers int
}

// New returns a worker with every workflow and activity registered. The
// caller starts it (Run or Start) and stops it.
func New(c client.Client, acts *activities.Activities, opts Options) worker.Worker {
	tq := opts.TaskQueue
	if tq == "" {
		tq = workflows.TaskQueue
	}
	w := worker.New(c, tq, SDKOptions(opts))
	Register(w, acts)
	return w
}

// SDKOptions turns Options into the SDK's worker options, defaults filled.
func SDKOptions(opts Options) worker.Options {
	if opts.MaxConcurrentActivities <= 0 {
		opts.MaxConcurrentActivities = DefaultMaxConcurrentActivities
	}
	if opts.MaxConcurrentLocalActivities <= 0 {
		opts.MaxConcurrentLocalActivities = DefaultMaxConcurrentLocalActivities
	}
	return worker.Options{
		MaxConcurrentActivityExecutionSize:      opts.MaxConcurrentActivities,
		MaxConcurrentLocalActivityExecutionSize: opts.MaxConcurrentLocalActivities,
		MaxConcurrentWorkflowTaskExecutionSize:  opts.MaxConcurrentWorkflowTasks,
		MaxConcurrentActivityTaskPollers:        opts.MaxConcurrentActivityPollers,
		MaxConcurrentWorkflowTaskPollers:        opts.MaxConcurrentWorkflowPollers,
	}
}

// Register registers the workflows and activities on any registry (a
// worker, or a test environment).
func Register(r worker.Registry, acts *activities.Activities) {
	r.RegisterWorkflow(workflows.DeliverEvent)
	r.RegisterWorkflow(workflows.DeliverAssetEvent)
	r.RegisterWorkflow(workflows.Redeliver)
	r.RegisterWorkflow(workflows.DeliverBatch)
	r.RegisterWorkflow(workflows.RecoverWebhook)
	r.RegisterWorkflow(workflows.Retention)
	r.RegisterActivity(acts)
}
