package models

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// DeliveryState is the state of a delivery, as stored in deliveries.state
// and shown in the API.
type DeliveryState string

// Delivery states. pending is the only state that changes; the others are
// final.
const (
	DeliveryPending   DeliveryState = "pending"
	DeliverySucceeded DeliveryState = "succeeded"
	DeliveryFailed    DeliveryState = "failed"
	DeliveryCancelled DeliveryState = "cancelled"
	// DeliverySuperseded: a newer event of the asset replaced the delivery
	// before it succeeded (delivery_mode latest, DESIGN §9).
	DeliverySuperseded DeliveryState = "superseded"
)

// Final reports whether no attempt can change the state any more.
func (s DeliveryState) Final() bool { return s != DeliveryPending }

// Delivery is the sending of one event to one webhook, over one or more
// attempts. Its ID is the webhook-id header value.
type Delivery struct {
	ID             string `gorm:"primaryKey"`
	EventID        string
	WebhookID      string
	OrganizationID string
	State          DeliveryState
	AttemptCount   int
	LastStatus     int
	LastErrorClass ErrorClass
	NextAttemptAt  *time.Time
	// SupersededBy is, for a superseded delivery, the sequence of the
	// event that superseded it.
	SupersededBy int64
	WorkflowID   string
	RunID        string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// TableName pins the table name.
func (Delivery) TableName() string { return "deliveries" }

// DeliveryView is a delivery with what a customer needs of its event.
type DeliveryView struct {
	Delivery
	EventKind   string
	AssetID     string
	AssetStatus string
	Sequence    int64 // the event's (DESIGN §9)
}

// DeliveryFilter narrows a delivery list; empty fields match everything.
type DeliveryFilter struct {
	State   DeliveryState
	AssetID string
}

// deliveryNamespace seeds the name-based delivery ids.
var deliveryNamespace = uuid.MustParse("5b0b7e8e-4f3c-4f38-9d52-6b1f3a1c2d10")

// DeliveryID derives the id of the delivery of an event to a webhook, so
// creating deliveries is idempotent when an activity is retried.
func DeliveryID(eventID, webhookID string) string {
	return "msg_" + uuid.NewSHA1(deliveryNamespace, []byte(eventID+"\x00"+webhookID)).String()
}

// insertBatch bounds the rows of one INSERT: PostgreSQL takes at most
// 65,535 parameters in a statement, and a delivery row has 13.
const insertBatch = 1000

// CreateDeliveries snapshots the active webhooks of the event's organization
// and creates one pending delivery for each, owned by run's workflow, and
// marks the event prepared, all in one transaction. Called again for the
// same event it returns the deliveries made the first time, as they are
// now. The result is ordered by id, the order DeliveryPage pages in.
func (s *Store) CreateDeliveries(ctx context.Context, eventID string, run WorkflowRun) ([]Delivery, error) {
	var out []Delivery
	err := s.transact(ctx, func(tx *gorm.DB) error {
		ev, err := eventExists(tx, eventID)
		if err != nil {
			return err
		}
		if ev.PreparedAt != nil {
			return tx.Where("event_id = ?", eventID).Order("id").Find(&out).Error
		}
		var all []Webhook
		if err := tx.Select("id", "statuses", "asset_types").Where("organization_id = ? AND is_active", ev.OrganizationID).Find(&all).Error; err != nil {
			return err
		}
		// Filtered-out webhooks get no delivery at all (DESIGN §10).
		hooks := all[:0]
		for _, h := range all {
			if ev.Kind != EventAsset || h.Wants(ev.AssetStatus, ev.AssetType) {
				hooks = append(hooks, h)
			}
		}
		ts := now()
		out = make([]Delivery, len(hooks))
		for i, h := range hooks {
			out[i] = Delivery{
				ID: DeliveryID(eventID, h.ID), EventID: eventID, WebhookID: h.ID, OrganizationID: ev.OrganizationID,
				State: DeliveryPending, NextAttemptAt: &ts, CreatedAt: ts, UpdatedAt: ts,
				WorkflowID: run.WorkflowID, RunID: run.RunID,
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		if len(out) > 0 {
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(&out, insertBatch).Error; err != nil {
				return err
			}
		}
		return tx.Model(&AssetEvent{}).Where("id = ?", eventID).Update("prepared_at", ts).Error
	})
	if err != nil {
		return nil, fmt.Errorf("create deliveries of event %s: %w", eventID, translate(err, "Event"))
	}
	return out, nil
}

// DeliveryPage returns the deliveries of an event in id order, from offset:
// the batch of a fan-out that one child workflow drives. The set of an
// event's deliveries never changes once created, so pages are stable.
func (s *Store) DeliveryPage(ctx context.Context, eventID string, offset, limit int) ([]Delivery, error) {
	var out []Delivery
	if err := s.db.WithContext(ctx).Where("event_id = ?", eventID).Order("id").Offset(offset).Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("page deliveries of event %s: %w", eventID, translate(err, "Delivery"))
	}
	return out, nil
}

// OverdueDeliveries lists pending deliveries whose next attempt was due
// before cutoff, the most overdue first: what the reconciler checks for a
// live owning workflow.
func (s *Store) OverdueDeliveries(ctx context.Context, cutoff time.Time, limit int) ([]Delivery, error) {
	var out []Delivery
	err := s.db.WithContext(ctx).Where("state = ? AND next_attempt_at < ?", DeliveryPending, cutoff.UTC()).
		Order("next_attempt_at, id").Limit(limit).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list overdue deliveries: %w", translate(err, "Delivery"))
	}
	return out, nil
}

// TouchDeliveries pushes the next attempt of those deliveries that are
// still pending and owned by workflowID to at, so the reconciler does not
// resume them again while the run it starts catches up, and returns how
// many it touched: 0 means the owner finished them meanwhile.
func (s *Store) TouchDeliveries(ctx context.Context, workflowID string, ids []string, at time.Time) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	res := s.db.WithContext(ctx).Model(&Delivery{}).
		Where("id IN ? AND state = ? AND workflow_id = ?", ids, DeliveryPending, workflowID).
		Update("next_attempt_at", at.UTC())
	if res.Error != nil {
		return 0, fmt.Errorf("touch deliveries of %s: %w", workflowID, translate(res.Error, "Delivery"))
	}
	return res.RowsAffected, nil
}

// WorkflowRun identifies the Temporal run that drives a delivery.
type WorkflowRun struct {
	WorkflowID string
	RunID      string
}

// DeliveryTarget is everything one attempt needs, loaded fresh each time so
// a changed URL or secret applies to the next attempt.
type DeliveryTarget struct {
	Delivery   Delivery
	Webhook    Webhook // may be soft-deleted: check Webhook.DeletedAt
	Payload    []byte
	ReceivedAt time.Time // when the event was accepted
	Sequence   int64     // the event's sequence for its asset; 0 for a ping
	AssetID    string    // the event's asset
}

// LoadDeliveryTarget loads a delivery with its webhook (deleted ones too)
// and its event's payload.
func (s *Store) LoadDeliveryTarget(ctx context.Context, deliveryID string) (*DeliveryTarget, error) {
	var d Delivery
	if err := s.db.WithContext(ctx).Where("id = ?", deliveryID).Take(&d).Error; err != nil {
		return nil, fmt.Errorf("load delivery %s: %w", deliveryID, translate(err, "Delivery"))
	}
	ts, err := s.DeliveryTargets(ctx, []Delivery{d})
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("load delivery %s: %w", deliveryID, Errorf(ENOTFOUND, "The webhook or event of the delivery was not found."))
	}
	return ts[0], nil
}

// DeliveryTargets completes loaded deliveries into what their attempts
// need: each one's webhook (deleted ones too) and its event's payload, in
// two queries whatever their number. The result follows ds; a delivery
// whose webhook or event is gone is left out.
func (s *Store) DeliveryTargets(ctx context.Context, ds []Delivery) ([]*DeliveryTarget, error) {
	db := s.db.WithContext(ctx)
	hookIDs, eventIDs := make([]string, 0, len(ds)), make([]string, 0, 1)
	for _, d := range ds {
		hookIDs = append(hookIDs, d.WebhookID)
		if !slices.Contains(eventIDs, d.EventID) {
			eventIDs = append(eventIDs, d.EventID)
		}
	}
	var hooks []Webhook
	if err := db.Unscoped().Where("id IN ?", hookIDs).Find(&hooks).Error; err != nil {
		return nil, fmt.Errorf("load webhooks of deliveries: %w", translate(err, "Webhook"))
	}
	byHook := make(map[string]*Webhook, len(hooks))
	for i := range hooks {
		if err := s.openSecret(&hooks[i]); err != nil {
			return nil, err
		}
		byHook[hooks[i].ID] = &hooks[i]
	}
	var evs []AssetEvent
	if err := db.Select("id", "payload", "received_at", "sequence", "asset_id").Where("id IN ?", eventIDs).Find(&evs).Error; err != nil {
		return nil, fmt.Errorf("load events of deliveries: %w", translate(err, "Event"))
	}
	byEvent := make(map[string]*AssetEvent, len(evs))
	for i := range evs {
		byEvent[evs[i].ID] = &evs[i]
	}
	out := make([]*DeliveryTarget, 0, len(ds))
	for _, d := range ds {
		h, ev := byHook[d.WebhookID], byEvent[d.EventID]
		if h == nil || ev == nil {
			continue
		}
		out = append(out, &DeliveryTarget{Delivery: d, Webhook: *h, Payload: ev.Payload, ReceivedAt: ev.ReceivedAt, Sequence: ev.Sequence, AssetID: ev.AssetID})
	}
	return out, nil
}

// ListWebhookDeliveries returns one page of a webhook's deliveries, newest
// first, with the total matching the filter. The webhook must be the
// organization's and live.
func (s *Store) ListWebhookDeliveries(ctx context.Context, orgID, webhookID string, f DeliveryFilter, page Page) ([]DeliveryView, int64, error) {
	if _, err := s.GetWebhook(ctx, orgID, webhookID); err != nil {
		return nil, 0, err
	}
	q := s.deliveryViews(ctx).Where("d.webhook_id = ? AND d.organization_id = ?", webhookID, orgID)
	if f.State != "" {
		q = q.Where("d.state = ?", f.State)
	}
	if f.AssetID != "" {
		q = q.Where("e.asset_id = ?", f.AssetID)
	}
	var total int64
	if err := q.Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count deliveries: %w", translate(err, "Delivery"))
	}
	var out []DeliveryView
	if err := q.Order("d.created_at DESC, d.id DESC").Limit(page.Limit).Offset(page.Offset).Find(&out).Error; err != nil {
		return nil, 0, fmt.Errorf("list deliveries: %w", translate(err, "Delivery"))
	}
	return out, total, nil
}

// GetDeliveryView loads one delivery of an organization.
func (s *Store) GetDeliveryView(ctx context.Context, orgID, id string) (*DeliveryView, error) {
	// Like webhook ids: a malformed id names nothing (and PostgreSQL would
	// refuse NUL or invalid UTF-8 in it as an error, not a miss).
	if u, ok := strings.CutPrefix(id, "msg_"); !ok || uuid.Validate(u) != nil {
		return nil, Errorf(ENOTFOUND, "Delivery not found.")
	}
	var v DeliveryView
	err := s.deliveryViews(ctx).Where("d.id = ? AND d.organization_id = ?", id, orgID).Take(&v).Error
	if err != nil {
		return nil, fmt.Errorf("get delivery %s: %w", id, translate(err, "Delivery"))
	}
	return &v, nil
}

func (s *Store) deliveryViews(ctx context.Context) *gorm.DB {
	return s.db.WithContext(ctx).Table("deliveries AS d").
		Select("d.*, e.kind AS event_kind, e.asset_id, e.asset_status, e.sequence").
		Joins("JOIN asset_events AS e ON e.id = d.event_id")
}

// MsgNewerEventSent is the 409 detail of a stale redelivery (DESIGN §9).
const MsgNewerEventSent = "A newer event of this asset was already sent to this webhook."

// ReopenDelivery makes a finished delivery pending again for a manual
// redelivery driven by run, and returns it. The delivery keeps its id (the
// webhook-id header). A delivery still in progress, or whose webhook is
// deleted or inactive, is ECONFLICT.
//
// Unless force, a delivery of an asset whose newer event was already sent
// to the webhook is ECONFLICT too (DESIGN §9).
func (s *Store) ReopenDelivery(ctx context.Context, orgID, id string, run WorkflowRun, force bool) (*DeliveryView, error) {
	err := s.transact(ctx, func(tx *gorm.DB) error {
		var d Delivery
		if err := tx.Where("id = ? AND organization_id = ?", id, orgID).Take(&d).Error; err != nil {
			return err
		}
		return reopenDelivery(tx, &d, run, force)
	})
	if err != nil {
		return nil, fmt.Errorf("reopen delivery %s: %w", id, translate(err, "Delivery"))
	}
	return s.GetDeliveryView(ctx, orgID, id)
}

// reopenDelivery is ReopenDelivery inside a transaction, d read in it.
func reopenDelivery(tx *gorm.DB, d *Delivery, run WorkflowRun, force bool) error {
	if d.State == DeliveryPending {
		return Errorf(ECONFLICT, "The delivery is still in progress.")
	}
	var w Webhook
	if err := tx.Unscoped().Where("id = ?", d.WebhookID).Take(&w).Error; err != nil {
		return err
	}
	if w.DeletedAt.Valid || !w.IsActive {
		return Errorf(ECONFLICT, "The webhook is deleted or inactive; re-enable it (is_active) before redelivering.")
	}
	if !force {
		stale, err := staleForRedelivery(tx, d)
		if err != nil {
			return err
		}
		if stale {
			return Errorf(ECONFLICT, MsgNewerEventSent)
		}
	}
	ts := now()
	return tx.Model(&Delivery{}).Where("id = ?", d.ID).Updates(map[string]any{
		"state": DeliveryPending, "next_attempt_at": ts, "updated_at": ts, "workflow_id": run.WorkflowID, "run_id": run.RunID,
		"superseded_by": 0,
	}).Error
}

// SetDeliveryRun records the run that drives a delivery.
func (s *Store) SetDeliveryRun(ctx context.Context, id string, run WorkflowRun) error {
	err := s.db.WithContext(ctx).Model(&Delivery{}).Where("id = ?", id).
		Updates(map[string]any{"workflow_id": run.WorkflowID, "run_id": run.RunID}).Error
	if err != nil {
		return fmt.Errorf("set run of delivery %s: %w", id, translate(err, "Delivery"))
	}
	return nil
}

// PendingDeliveries counts deliveries still in progress (a metrics gauge).
func (s *Store) PendingDeliveries(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&Delivery{}).Where("state = ?", DeliveryPending).Count(&n).Error
	return n, translate(err, "Delivery")
}

// FinishDelivery sets the final state of a delivery that is still pending.
func (s *Store) FinishDelivery(ctx context.Context, id string, state DeliveryState) error {
	err := s.db.WithContext(ctx).Model(&Delivery{}).Where("id = ? AND state = ?", id, DeliveryPending).
		Updates(map[string]any{"state": state, "next_attempt_at": nil, "updated_at": now()}).Error
	if err != nil {
		return fmt.Errorf("finish delivery %s: %w", id, translate(err, "Delivery"))
	}
	return nil
}

// GetDelivery loads a delivery by id.
func (s *Store) GetDelivery(ctx context.Context, id string) (*Delivery, error) {
	var d Delivery
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&d).Error; err != nil {
		return nil, fmt.Errorf("get delivery %s: %w", id, translate(err, "Delivery"))
	}
	return &d, nil
}

// ListEventDeliveries returns the deliveries of an event.
func (s *Store) ListEventDeliveries(ctx context.Context, eventID string) ([]Delivery, error) {
	var out []Delivery
	if err := s.db.WithContext(ctx).Where("event_id = ?", eventID).Order("created_at, id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list deliveries of event %s: %w", eventID, translate(err, "Delivery"))
	}
	return out, nil
}
