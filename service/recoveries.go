package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/workflows"
)

// ErrRecoveryNotStarted is Recover's error when Temporal did not take the
// recovery's workflow; nothing was changed, so the customer can ask again.
var ErrRecoveryNotStarted = errors.New("the recovery could not be started")

// RecoveryStarter starts bulk recovery workflows; *Starter implements it.
type RecoveryStarter interface {
	StartRecovery(ctx context.Context, r *models.Recovery) error
}

// WorkflowStarter starts what customers ask for through the API;
// *Starter implements it.
type WorkflowStarter interface {
	RedeliveryStarter
	RecoveryStarter
}

// Recoveries is the customer's bulk recovery use case (DESIGN §10).
type Recoveries struct {
	Store     *models.Store
	Workflows RecoveryStarter
	Logger    *slog.Logger
}

// Recover records a recovery of the webhook's failed deliveries accepted
// in [since, until) and starts its workflow. If the start fails the
// recovery is deleted again and the error wraps ErrRecoveryNotStarted.
func (r *Recoveries) Recover(ctx context.Context, orgID, webhookID string, since time.Time, until *time.Time) (*models.Recovery, error) {
	rec, err := r.Store.CreateRecovery(ctx, orgID, webhookID, since, until, workflows.RecoveryWorkflowID)
	if err != nil {
		return nil, err
	}
	if r.Workflows == nil {
		err = errors.New("no workflow client configured")
	} else {
		err = r.Workflows.StartRecovery(ctx, rec)
	}
	if err != nil {
		if derr := r.Store.DeleteRecovery(ctx, rec.ID); derr != nil && r.Logger != nil {
			r.Logger.ErrorContext(ctx, "delete unstarted recovery", "recoveryID", rec.ID, "error", derr)
		}
		return nil, fmt.Errorf("%w: %w", ErrRecoveryNotStarted, err)
	}
	return rec, nil
}

// StartRecovery starts a recovery's RecoverWebhook workflow.
func (s *Starter) StartRecovery(ctx context.Context, r *models.Recovery) error {
	opts := client.StartWorkflowOptions{
		ID: r.WorkflowID, TaskQueue: s.taskQueue(),
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            fmt.Sprintf("Recover failed deliveries of webhook %s since %s (organization %s)", r.WebhookID, r.Since.Format(time.RFC3339), r.OrganizationID),
		Memo:                     map[string]any{"OrganizationId": r.OrganizationID, "WebhookId": r.WebhookID, "RecoveryId": r.ID},
	}
	if s.SearchAttributes {
		opts.TypedSearchAttributes = temporal.NewSearchAttributes(
			workflows.OrganizationIDKey.ValueSet(r.OrganizationID), workflows.WebhookIDKey.ValueSet(r.WebhookID))
	}
	in := workflows.RecoverWebhookInput{RecoveryID: r.ID, OrganizationID: r.OrganizationID, WebhookID: r.WebhookID, SearchAttributes: s.SearchAttributes}
	if _, err := s.Client.ExecuteWorkflow(ctx, opts, workflows.RecoverWebhook, in); err != nil {
		return fmt.Errorf("start workflow %s: %w", r.WorkflowID, err)
	}
	return nil
}
