package workflows_test

import (
	"testing"

	"go.temporal.io/sdk/worker"

	"github.com/streamhooks/streamhooks/workflows"
)

// TestReplayRecordedHistory replays a history recorded from a real run (the
// end-to-end test writes it with -update: 3 webhooks, retries, a 410). A
// change to DeliverEvent that would break running workflows fails here;
// such a change needs workflow.GetVersion.
func TestReplayRecordedHistory(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflow(workflows.DeliverEvent)
	if err := r.ReplayWorkflowHistoryFromJSONFile(nil, "testdata/deliver_event.json"); err != nil {
		t.Fatalf("replay: %v", err)
	}
}
