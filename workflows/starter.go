package workflows

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

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

// SearchAttributeKeys lists the custom search attributes the starter sets.
// It is the one list every registration uses: EnsureSearchAttributes and the
// embedded dev server's namespace (internal/devserver).
func SearchAttributeKeys() []temporal.SearchAttributeKeyKeyword {
	return []temporal.SearchAttributeKeyKeyword{OrganizationIDKey, AssetIDKey, AssetStatusKey, WebhookIDKey}
}

// SearchAttributeTypes maps each of SearchAttributeKeys to its indexed
// type, the form a namespace registers them in.
func SearchAttributeTypes() map[string]enumspb.IndexedValueType {
	types := map[string]enumspb.IndexedValueType{}
	for _, k := range SearchAttributeKeys() {
		types[k.GetName()] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	}
	return types
}

// EnsureSearchAttributes registers the custom search attributes in a
// namespace; registering existing ones is harmless.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	want := SearchAttributeTypes()
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

// IsRedeliveryOf reports whether workflowID is a redelivery of deliveryID.
func IsRedeliveryOf(workflowID, deliveryID string) bool {
	return strings.HasPrefix(workflowID, "redeliver:"+deliveryID+":")
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
			OrganizationIDKey.ValueSet(r.OrganizationID), AssetIDKey.ValueSet(r.AssetID),
			AssetStatusKey.ValueSet(r.AssetStatus), WebhookIDKey.ValueSet(r.WebhookID))
	}
	if r.Resume {
		opts.WorkflowIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
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

// WorkflowID is the id of the workflow that delivers an event. Temporal
// carries workflow ids in gRPC headers, which take printable ASCII only, so
// an id with anything else (accents, CJK, emoji, right-to-left text) is
// derived: "asset-event-u:" and the id percent-encoded, cut at
// maxReadableID characters with a hash of the whole id, so distinct event
// ids never share a workflow. ASCII ids keep "asset-event:<id>", the form
// every released version used.
func WorkflowID(eventID string) string {
	if printableASCII(eventID) {
		return "asset-event:" + eventID
	}
	enc := url.PathEscape(eventID)
	if len(enc) > maxReadableID {
		cut := maxReadableID
		if i := strings.LastIndexByte(enc[:cut], '%'); i >= cut-2 {
			cut = i // never split a %XX escape
		}
		sum := sha256.Sum256([]byte(eventID))
		enc = enc[:cut] + "~" + hex.EncodeToString(sum[:12])
	}
	return "asset-event-u:" + enc
}

// maxReadableID bounds the readable part of a derived workflow id (Temporal
// refuses ids over 1,000 bytes).
const maxReadableID = 400

// printableASCII reports whether s is non-empty printable ASCII, all a
// gRPC header value may hold.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return s != ""
}

// ValidWorkflowID reports whether id can travel as a workflow id: a row
// stored before ids were derived may hold one that cannot.
func ValidWorkflowID(id string) bool { return printableASCII(id) }

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
