package workflows

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/streamhooks/streamhooks/models"
)

// Starter starts DeliverEvent workflows for stored events. It implements
// api.EventStarter.
type Starter struct {
	Client    client.Client
	TaskQueue string // TaskQueue when empty
}

// WorkflowID derives the workflow id from the event id, so a repeated event
// (or a retried start) collapses onto one workflow.
func (s *Starter) WorkflowID(eventID string) string { return WorkflowID(eventID) }

// WorkflowID is the id of the workflow that delivers an event.
func WorkflowID(eventID string) string { return "asset-event:" + eventID }

// StartEvent starts the event's workflow. Starting an event whose workflow
// exists already, running or closed, is a success: the id policies make the
// start idempotent.
func (s *Starter) StartEvent(ctx context.Context, ev *models.AssetEvent) error {
	tq := s.TaskQueue
	if tq == "" {
		tq = TaskQueue
	}
	opts := client.StartWorkflowOptions{
		ID:                       ev.WorkflowID,
		TaskQueue:                tq,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		Memo: map[string]any{
			"OrganizationId": ev.OrganizationID, "AssetId": ev.AssetID, "AssetStatus": ev.AssetStatus,
		},
		StaticSummary: fmt.Sprintf("Asset %s → %s (organization %s)", ev.AssetID, statusOrUnknown(ev.AssetStatus), ev.OrganizationID),
	}
	in := DeliverEventInput{EventID: ev.ID, OrganizationID: ev.OrganizationID, AssetID: ev.AssetID, AssetStatus: ev.AssetStatus}
	_, err := s.Client.ExecuteWorkflow(ctx, opts, DeliverEvent, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("start workflow %s: %w", ev.WorkflowID, err)
	}
	return nil
}

func statusOrUnknown(s string) string {
	if s == "" {
		return "unknown status"
	}
	return s
}
