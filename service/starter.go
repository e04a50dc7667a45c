package service

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/workflows"
)

// Starter starts the delivery workflows of stored events and redeliveries,
// and asks Temporal whether a workflow still runs: the network side of
// the workflows package, which holds only deterministic code.
type Starter struct {
	Client    client.Client
	TaskQueue string // workflows.TaskQueue when empty
	// SearchAttributes sets OrganizationId, AssetId, AssetStatus and
	// WebhookId on started workflows; only when they are registered (see
	// EnsureSearchAttributes), or starts would fail.
	SearchAttributes bool
	// EagerStart asks the server to hand the first workflow task straight
	// back to a worker of this process's client (dev mode, bench), saving
	// a round trip through matching.
	EagerStart bool
}

// EnsureSearchAttributes registers the custom search attributes
// (workflows.SearchAttributeKeys) in a namespace; registering existing
// ones is harmless.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	want := workflows.SearchAttributeTypes()
	list, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes of %s: %w", namespace, err)
	}
	for name := range list.GetCustomAttributes() {
		delete(want, name)
	}
	if len(want) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: want})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("add search attributes to %s: %w", namespace, err)
	}
	return nil
}

// Running reports whether the workflow's current run is still running. A
// workflow Temporal does not know (never started, or deleted by
// retention) is not running.
func (s *Starter) Running(ctx context.Context, workflowID string) (bool, error) {
	resp, err := s.Client.DescribeWorkflowExecution(ctx, workflowID, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("describe workflow %s: %w", workflowID, err)
	}
	return resp.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
}

// RedeliveryStart describes a redelivery to start.
type RedeliveryStart struct {
	WorkflowID     string
	DeliveryID     string
	WebhookID      string
	OrganizationID string
	AssetID        string
	AssetStatus    string
	// Force sends the delivery even when a newer event of its asset was
	// sent to the webhook already (DESIGN §9).
	Force bool
	// Resume starts a new run of a closed redelivery that left its
	// delivery pending (the reconciler).
	Resume bool
}

// StartRedelivery starts a Redeliver workflow and returns its run.
func (s *Starter) StartRedelivery(ctx context.Context, r RedeliveryStart) (models.WorkflowRun, error) {
	opts := client.StartWorkflowOptions{
		ID: r.WorkflowID, TaskQueue: s.taskQueue(),
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            fmt.Sprintf("Redeliver %s (asset %s, organization %s)", r.DeliveryID, r.AssetID, r.OrganizationID),
		Memo:                     map[string]any{"OrganizationId": r.OrganizationID, "AssetId": r.AssetID, "WebhookId": r.WebhookID},
	}
	if s.SearchAttributes {
		opts.TypedSearchAttributes = temporal.NewSearchAttributes(
			workflows.OrganizationIDKey.ValueSet(r.OrganizationID), workflows.AssetIDKey.ValueSet(r.AssetID),
			workflows.AssetStatusKey.ValueSet(r.AssetStatus), workflows.WebhookIDKey.ValueSet(r.WebhookID))
	}
	if r.Resume {
		opts.WorkflowIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
	}
	run, err := s.Client.ExecuteWorkflow(ctx, opts, workflows.Redeliver, workflows.RedeliverInput{DeliveryID: r.DeliveryID, OrganizationID: r.OrganizationID, Force: r.Force})
	if err != nil {
		return models.WorkflowRun{}, fmt.Errorf("start workflow %s: %w", r.WorkflowID, err)
	}
	return models.WorkflowRun{WorkflowID: run.GetID(), RunID: run.GetRunID()}, nil
}

func (s *Starter) taskQueue() string {
	if s.TaskQueue == "" {
		return workflows.TaskQueue
	}
	return s.TaskQueue
}

// StartEvent starts the event's workflow. Starting an event whose workflow
// exists already, running or closed, is a success: the id policies make the
// start idempotent.
func (s *Starter) StartEvent(ctx context.Context, ev *models.AssetEvent) error {
	return s.startEvent(ctx, ev, enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE)
}

// ResumeEvent starts a new run of the event's workflow, whose previous run
// has closed while deliveries were left to do (the reconciler). A running
// workflow is left alone: the conflict policy uses it.
func (s *Starter) ResumeEvent(ctx context.Context, ev *models.AssetEvent) error {
	return s.startEvent(ctx, ev, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE)
}

func (s *Starter) startEvent(ctx context.Context, ev *models.AssetEvent, reuse enumspb.WorkflowIdReusePolicy) error {
	opts := client.StartWorkflowOptions{
		ID:                       ev.WorkflowID,
		TaskQueue:                s.taskQueue(),
		WorkflowIDReusePolicy:    reuse,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		Memo: map[string]any{
			"OrganizationId": ev.OrganizationID, "AssetId": ev.AssetID, "AssetStatus": ev.AssetStatus,
		},
		StaticSummary:    fmt.Sprintf("Asset %s → %s (organization %s)", ev.AssetID, statusOrUnknown(ev.AssetStatus), ev.OrganizationID),
		EnableEagerStart: s.EagerStart,
	}
	if s.SearchAttributes {
		opts.TypedSearchAttributes = temporal.NewSearchAttributes(workflows.OrganizationIDKey.ValueSet(ev.OrganizationID),
			workflows.AssetIDKey.ValueSet(ev.AssetID), workflows.AssetStatusKey.ValueSet(ev.AssetStatus))
	}
	in := workflows.DeliverEventInput{EventID: ev.ID, OrganizationID: ev.OrganizationID, AssetID: ev.AssetID, AssetStatus: ev.AssetStatus}
	_, err := s.Client.ExecuteWorkflow(ctx, opts, workflows.DeliverAssetEvent, in)
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
