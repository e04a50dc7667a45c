package workflows

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/streamhooks/streamhooks/models"
)

// Starter starts DeliverEvent workflows for stored events. It implements
// api.EventStarter.
type Starter struct {
	Client    client.Client
	TaskQueue string // TaskQueue when empty
	// SearchAttributes sets OrganizationId, AssetId, AssetStatus and
	// WebhookId on started workflows; only when they are registered (see
	// EnsureSearchAttributes), or starts would fail.
	SearchAttributes bool
	// EagerStart asks the server to hand the first workflow task straight
	// back to a worker of this process's client (dev mode, bench), saving
	// a round trip through matching.
	EagerStart bool
}

// Search attribute keys that make deliveries findable in Temporal UI, e.g.
// OrganizationId="demo" AND AssetId="vid_1".
var (
	OrganizationIDKey = temporal.NewSearchAttributeKeyKeyword("OrganizationId")
	AssetIDKey        = temporal.NewSearchAttributeKeyKeyword("AssetId")
	AssetStatusKey    = temporal.NewSearchAttributeKeyKeyword("AssetStatus")
	WebhookIDKey      = temporal.NewSearchAttributeKeyKeyword("WebhookId")
)

// EnsureSearchAttributes registers the custom search attributes in a
// namespace; registering existing ones is harmless.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	want := map[string]enumspb.IndexedValueType{}
	for _, k := range []temporal.SearchAttributeKeyKeyword{OrganizationIDKey, AssetIDKey, AssetStatusKey, WebhookIDKey} {
		want[k.GetName()] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	}
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

// RedeliveryID is the workflow id of the redelivery that starts with
// attempt number firstAttempt, so a repeated request collapses.
func RedeliveryID(deliveryID string, firstAttempt int) string {
	return "redeliver:" + deliveryID + ":" + strconv.Itoa(firstAttempt)
}

// RedeliveryStart describes a redelivery to start.
type RedeliveryStart struct {
	WorkflowID     string
	DeliveryID     string
	WebhookID      string
	OrganizationID string
	AssetID        string
	AssetStatus    string
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
			OrganizationIDKey.ValueSet(r.OrganizationID), AssetIDKey.ValueSet(r.AssetID),
			AssetStatusKey.ValueSet(r.AssetStatus), WebhookIDKey.ValueSet(r.WebhookID))
	}
	run, err := s.Client.ExecuteWorkflow(ctx, opts, Redeliver, RedeliverInput{DeliveryID: r.DeliveryID, OrganizationID: r.OrganizationID})
	if err != nil {
		return models.WorkflowRun{}, fmt.Errorf("start workflow %s: %w", r.WorkflowID, err)
	}
	return models.WorkflowRun{WorkflowID: run.GetID(), RunID: run.GetRunID()}, nil
}

func (s *Starter) taskQueue() string {
	if s.TaskQueue == "" {
		return TaskQueue
	}
	return s.TaskQueue
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
	opts := client.StartWorkflowOptions{
		ID:                       ev.WorkflowID,
		TaskQueue:                s.taskQueue(),
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		Memo: map[string]any{
			"OrganizationId": ev.OrganizationID, "AssetId": ev.AssetID, "AssetStatus": ev.AssetStatus,
		},
		StaticSummary:    fmt.Sprintf("Asset %s → %s (organization %s)", ev.AssetID, statusOrUnknown(ev.AssetStatus), ev.OrganizationID),
		EnableEagerStart: s.EagerStart,
	}
	if s.SearchAttributes {
		opts.TypedSearchAttributes = temporal.NewSearchAttributes(OrganizationIDKey.ValueSet(ev.OrganizationID),
			AssetIDKey.ValueSet(ev.AssetID), AssetStatusKey.ValueSet(ev.AssetStatus))
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
