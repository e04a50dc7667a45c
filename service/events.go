package service

import (
	"context"
	"errors"

	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/workflows"
)

// ErrEventIDTaken is Accept's error for an event_id another organization
// used first: event ids are global, so the second event cannot be stored.
var ErrEventIDTaken = errors.New("this event_id was already used for another organization")

// Notifier is told about each committed event so its workflow starts at
// once; *Outbox implements it. Notify must not block: the outbox's scan is
// the guarantee, the notification only saves its delay.
type Notifier interface {
	Notify(ev models.AssetEvent)
}

// Events is the ingest use case: it accepts an asset event for delivery.
type Events struct {
	Store *models.Store
	// Outbox, when set, is told about each new event; without it a stored
	// event waits for the next scan of an outbox elsewhere.
	Outbox Notifier
}

// Accept stores a validated event and returns the stored row, once it is
// committed. It never calls Temporal: the outbox starts the workflow, so a
// slow or unreachable Temporal neither holds the caller nor is a reason to
// refuse the event; an unreachable database is (EUNAVAILABLE). A repeated
// event_id stores nothing and returns the row stored first.
func (e *Events) Accept(ctx context.Context, ev *models.AssetEvent) (*models.AssetEvent, error) {
	if _, err := e.Store.GetOrganization(ctx, ev.OrganizationID); err != nil {
		return nil, err
	}
	ev.WorkflowID = workflows.WorkflowID(ev.ID)
	stored, _, err := e.Store.CreateEvent(ctx, ev)
	if err != nil {
		return nil, err
	}
	if stored.OrganizationID != ev.OrganizationID {
		return nil, ErrEventIDTaken
	}
	if stored.WorkflowStartedAt == nil && e.Outbox != nil {
		e.Outbox.Notify(*stored)
	}
	return stored, nil
}
