// Package worker builds the Temporal worker that runs streamhooks workflows
// and activities, and the relay that starts workflows of events whose start
// was interrupted.
package worker

import (
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/streamhooks/streamhooks/activities"
	"github.com/streamhooks/streamhooks/workflows"
)

// Options tune the worker; zero values take the SDK defaults.
type Options struct {
	TaskQueue                    string
	MaxConcurrentActivities      int
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
	w := worker.New(c, tq, worker.Options{
		MaxConcurrentActivityExecutionSize:     opts.MaxConcurrentActivities,
		MaxConcurrentWorkflowTaskExecutionSize: opts.MaxConcurrentWorkflowTasks,
		MaxConcurrentActivityTaskPollers:       opts.MaxConcurrentActivityPollers,
		MaxConcurrentWorkflowTaskPollers:       opts.MaxConcurrentWorkflowPollers,
	})
	Register(w, acts)
	return w
}

// Register registers the workflows and activities on any registry (a
// worker, or a test environment).
func Register(r worker.Registry, acts *activities.Activities) {
	r.RegisterWorkflow(workflows.DeliverEvent)
	r.RegisterWorkflow(workflows.Redeliver)
	r.RegisterActivity(acts)
}
