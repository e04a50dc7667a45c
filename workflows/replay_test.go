package workflows_test

import (
	"testing"

	"go.temporal.io/sdk/worker"

	"github.com/streamhooks/streamhooks/workflows"
)

// TestReplayRecordedHistory replays histories recorded from real runs (3
// webhooks, retries, a 410): deliver_event.json from before the
// local-first-attempt change (all regular activities),
// deliver_event_local_first.json after it, deliver_event_durable.json
// after the durable-fanout change (the last DeliverEvent history), and
// deliver_asset_event.json and redeliver_durable.json, which the
// end-to-end test rewrites with -update. A change to a
// workflow that would break running ones fails here; such a change needs
// workflow.GetVersion.
func TestReplayRecordedHistory(t *testing.T) {
	for _, file := range []string{"testdata/deliver_event.json", "testdata/deliver_event_local_first.json",
		"testdata/deliver_event_durable.json", "testdata/deliver_asset_event.json", "testdata/redeliver_durable.json"} {
		t.Run(file, func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflow(workflows.DeliverEvent)
			r.RegisterWorkflow(workflows.DeliverAssetEvent)
			r.RegisterWorkflow(workflows.Redeliver)
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, file); err != nil {
				t.Fatalf("replay: %v", err)
			}
		})
	}
}
