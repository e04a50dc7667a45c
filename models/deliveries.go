package models

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Delivery states. pending is the only state that changes; the others are
// final.
const (
	DeliveryPending   = "pending"
	DeliverySucceeded = "succeeded"
	DeliveryFailed    = "failed"
	DeliveryCancelled = "cancelled"
)

// Attempt error classes, as recorded on each attempt row.
const (
	ErrorClassNone       = ""
	ErrorClassTimeout    = "timeout"
	ErrorClassConnection = "connection"
	ErrorClassDNS        = "dns"
	ErrorClassBlocked    = "blocked"
	ErrorClassHTTP       = "http"
)

// Delivery is the sending of one event to one webhook, over one or more
// attempts. Its ID is the webhook-id header value.
type Delivery struct {
	ID             string `gorm:"primaryKey"`
	EventID        string
	WebhookID      string
	OrganizationID string
	State          string
	AttemptCount   int
	LastStatus     int
	LastErrorClass string
	NextAttemptAt  *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// TableName pins the table name.
func (Delivery) TableName() string { return "deliveries" }

// DeliveryAttempt is the audit row of one HTTP attempt.
type DeliveryAttempt struct {
	ID              int64 `gorm:"primaryKey"`
	DeliveryID      string
	AttemptNumber   int
	Manual          bool
	RequestURL      string `gorm:"column:request_url"`
	RequestHeaders  string
	ResponseStatus  int
	ResponseHeaders string
	ResponseBody    []byte
	ErrorClass      string
	ErrorMessage    string
	DurationMS      int64 `gorm:"column:duration_ms"`
	StartedAt       time.Time
	FinishedAt      time.Time
}

// TableName pins the table name.
func (DeliveryAttempt) TableName() string { return "delivery_attempts" }

// deliveryNamespace seeds the name-based delivery ids.
var deliveryNamespace = uuid.MustParse("5b0b7e8e-4f3c-4f38-9d52-6b1f3a1c2d10")

// DeliveryID derives the id of the delivery of an event to a webhook, so
// creating deliveries is idempotent when an activity is retried.
func DeliveryID(eventID, webhookID string) string {
	return "msg_" + uuid.NewSHA1(deliveryNamespace, []byte(eventID+"\x00"+webhookID)).String()
}

// CreateDeliveries snapshots the active webhooks of the event's organization
// and creates one pending delivery for each. Called again for the same event
// it returns the deliveries made the first time.
func (s *Store) CreateDeliveries(ctx context.Context, eventID string) ([]Delivery, error) {
	var out []Delivery
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		ev, err := eventExists(tx, eventID)
		if err != nil {
			return err
		}
		if err := tx.Where("event_id = ?", eventID).Order("created_at, id").Find(&out).Error; err != nil {
			return err
		}
		if len(out) > 0 {
			return nil
		}
		var hooks []Webhook
		if err := tx.Where("organization_id = ? AND is_active", ev.OrganizationID).Order("created_at, id").Find(&hooks).Error; err != nil {
			return err
		}
		if len(hooks) == 0 {
			return nil
		}
		ts := now()
		out = make([]Delivery, len(hooks))
		for i, h := range hooks {
			out[i] = Delivery{
				ID: DeliveryID(eventID, h.ID), EventID: eventID, WebhookID: h.ID, OrganizationID: ev.OrganizationID,
				State: DeliveryPending, NextAttemptAt: &ts, CreatedAt: ts, UpdatedAt: ts,
			}
		}
		// Same order as the re-read above: one created_at, so by id.
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		return tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&out).Error
	})
	if err != nil {
		return nil, fmt.Errorf("create deliveries of event %s: %w", eventID, translate(err, "Event"))
	}
	return out, nil
}

// DeliveryTarget is everything one attempt needs, loaded fresh each time so
// a changed URL or secret applies to the next attempt.
type DeliveryTarget struct {
	Delivery Delivery
	Webhook  Webhook // may be soft-deleted: check Webhook.DeletedAt
	Payload  []byte
}

// LoadDeliveryTarget loads a delivery with its webhook (deleted ones too)
// and its event's payload.
func (s *Store) LoadDeliveryTarget(ctx context.Context, deliveryID string) (*DeliveryTarget, error) {
	var t DeliveryTarget
	db := s.db.WithContext(ctx)
	if err := db.Where("id = ?", deliveryID).Take(&t.Delivery).Error; err != nil {
		return nil, fmt.Errorf("load delivery %s: %w", deliveryID, translate(err, "Delivery"))
	}
	if err := db.Unscoped().Where("id = ?", t.Delivery.WebhookID).Take(&t.Webhook).Error; err != nil {
		return nil, fmt.Errorf("load webhook of delivery %s: %w", deliveryID, translate(err, "Webhook"))
	}
	var ev AssetEvent
	if err := db.Select("payload").Where("id = ?", t.Delivery.EventID).Take(&ev).Error; err != nil {
		return nil, fmt.Errorf("load event of delivery %s: %w", deliveryID, translate(err, "Event"))
	}
	t.Payload = ev.Payload
	return &t, nil
}

// AttemptOutcome is how a recorded attempt moves its delivery on.
type AttemptOutcome struct {
	State         string     // new delivery state; pending to keep going
	NextAttemptAt *time.Time // when pending: the earliest next attempt
	// DeactivateReason, when set, deactivates the webhook (410 Gone) and
	// cancels its other pending deliveries.
	DeactivateReason string
}

// RecordAttempt stores an attempt row and moves its delivery on, in one
// transaction. Re-recording the same attempt number (an activity retried
// after the row was written) replaces nothing and changes nothing. A delivery
// that is no longer pending (cancelled meanwhile) keeps its state.
func (s *Store) RecordAttempt(ctx context.Context, a *DeliveryAttempt, out AttemptOutcome) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(a)
		if res.Error != nil {
			return res.Error
		}
		ts := now()
		changes := map[string]any{
			"attempt_count": gorm.Expr("CASE WHEN attempt_count < ? THEN ? ELSE attempt_count END", a.AttemptNumber, a.AttemptNumber),
			"last_status":   a.ResponseStatus, "last_error_class": a.ErrorClass,
			"state": out.State, "next_attempt_at": out.NextAttemptAt, "updated_at": ts,
		}
		if err := tx.Model(&Delivery{}).Where("id = ? AND state = ?", a.DeliveryID, DeliveryPending).Updates(changes).Error; err != nil {
			return err
		}
		if out.DeactivateReason == "" {
			return nil
		}
		var d Delivery
		if err := tx.Where("id = ?", a.DeliveryID).Take(&d).Error; err != nil {
			return err
		}
		if err := tx.Model(&Webhook{}).Where("id = ?", d.WebhookID).
			Updates(map[string]any{"is_active": false, "deactivated_reason": out.DeactivateReason, "updated_at": ts}).Error; err != nil {
			return err
		}
		return cancelPendingDeliveries(tx, d.WebhookID)
	})
	if err != nil {
		return fmt.Errorf("record attempt %d of delivery %s: %w", a.AttemptNumber, a.DeliveryID, translate(err, "Delivery"))
	}
	return nil
}

// FinishDelivery sets the final state of a delivery that is still pending.
func (s *Store) FinishDelivery(ctx context.Context, id, state string) error {
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

// ListAttempts returns a delivery's attempts in order.
func (s *Store) ListAttempts(ctx context.Context, deliveryID string) ([]DeliveryAttempt, error) {
	var out []DeliveryAttempt
	if err := s.db.WithContext(ctx).Where("delivery_id = ?", deliveryID).Order("attempt_number").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list attempts of %s: %w", deliveryID, translate(err, "Delivery"))
	}
	return out, nil
}

// ListEventDeliveries returns the deliveries of an event.
func (s *Store) ListEventDeliveries(ctx context.Context, eventID string) ([]Delivery, error) {
	var out []Delivery
	if err := s.db.WithContext(ctx).Where("event_id = ?", eventID).Order("created_at, id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list deliveries of event %s: %w", eventID, translate(err, "Delivery"))
	}
	return out, nil
}
