package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ErrorClass says why an attempt failed, as recorded on its row and shown
// in the API; empty for a success.
type ErrorClass string

// Attempt error classes, as recorded on each attempt row.
const (
	ErrorClassNone       ErrorClass = ""
	ErrorClassTimeout    ErrorClass = "timeout"
	ErrorClassConnection ErrorClass = "connection"
	ErrorClassDNS        ErrorClass = "dns"
	ErrorClassBlocked    ErrorClass = "blocked"
	ErrorClassHTTP       ErrorClass = "http"
)

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
	ErrorClass      ErrorClass
	ErrorMessage    string
	DurationMS      int64 `gorm:"column:duration_ms"`
	StartedAt       time.Time
	FinishedAt      time.Time
}

// TableName pins the table name.
func (DeliveryAttempt) TableName() string { return "delivery_attempts" }

// AttemptOutcome is how a recorded attempt moves its delivery on.
type AttemptOutcome struct {
	State         DeliveryState // new delivery state; pending to keep going
	NextAttemptAt *time.Time    // when pending: the earliest next attempt
	// DeactivateReason, when set, deactivates the webhook (410 Gone) and
	// cancels its other pending deliveries.
	DeactivateReason string
	// DisableAfter, when positive, deactivates a webhook whose attempts
	// have failed continuously for this long (auto-disable).
	DisableAfter time.Duration
	// Test marks a ping, which never changes the webhook.
	Test bool
}

// RecordAttempt stores an attempt row and moves its delivery on, in one
// transaction. Re-recording the same attempt number (an activity retried
// after the row was written) replaces nothing and changes nothing. A delivery
// that is no longer pending (cancelled meanwhile) keeps its state.
func (s *Store) RecordAttempt(ctx context.Context, r AttemptRecord) error {
	if err := s.RecordAttempts(ctx, []AttemptRecord{r}); err != nil {
		return fmt.Errorf("record attempt %d of delivery %s: %w", r.Attempt.AttemptNumber, r.Attempt.DeliveryID, err)
	}
	return nil
}

// AttemptRecord is one attempt to record and what it does to its delivery.
type AttemptRecord struct {
	Attempt *DeliveryAttempt
	Outcome AttemptOutcome
	// WebhookID is the delivery's webhook, when the caller knows it
	// (saves a lookup).
	WebhookID string
	// AssetID, when set, is the asset whose turn (TakeTurns) the attempt
	// held for the webhook: recording the attempt gives it back.
	AssetID string
}

// RecordAttempts records several attempts as RecordAttempt does, all in
// one transaction and their rows in one INSERT: the first attempts of an
// event's deliveries, made together.
func (s *Store) RecordAttempts(ctx context.Context, recs []AttemptRecord) error {
	if len(recs) == 0 {
		return nil
	}
	rows := make([]*DeliveryAttempt, len(recs))
	for i, r := range recs {
		rows[i] = r.Attempt
	}
	err := s.transact(ctx, func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, insertBatch).Error; err != nil {
			return err
		}
		ts := now()
		for _, r := range recs {
			if err := moveDeliveryOn(tx, r, ts); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return translate(err, "Delivery")
	}
	return nil
}

// moveDeliveryOn applies one recorded attempt to its delivery and, on a
// failure streak or a 410, to its webhook.
func moveDeliveryOn(tx *gorm.DB, r AttemptRecord, ts time.Time) error {
	a, out := r.Attempt, r.Outcome
	changes := map[string]any{
		"attempt_count": gorm.Expr("CASE WHEN attempt_count < ? THEN ? ELSE attempt_count END", a.AttemptNumber, a.AttemptNumber),
		"last_status":   a.ResponseStatus, "last_error_class": a.ErrorClass,
		"state": out.State, "next_attempt_at": out.NextAttemptAt, "updated_at": ts,
	}
	if err := tx.Model(&Delivery{}).Where("id = ? AND state = ?", a.DeliveryID, DeliveryPending).Updates(changes).Error; err != nil {
		return err
	}
	webhookID := r.WebhookID
	if webhookID == "" {
		var d Delivery
		if err := tx.Select("webhook_id").Where("id = ?", a.DeliveryID).Take(&d).Error; err != nil {
			return err
		}
		webhookID = d.WebhookID
	}
	if r.AssetID != "" {
		if err := releaseTurn(tx, webhookID, r.AssetID, a.DeliveryID); err != nil {
			return err
		}
	}
	reason, err := failureStreak(tx, webhookID, a, out, ts)
	if err != nil || reason == "" {
		return err
	}
	if err := tx.Model(&Webhook{}).Where("id = ?", webhookID).
		Updates(map[string]any{"is_active": false, "deactivated_reason": reason, "updated_at": ts}).Error; err != nil {
		return err
	}
	return cancelPendingDeliveries(tx, webhookID)
}

// ListAttempts returns a delivery's attempts in order.
func (s *Store) ListAttempts(ctx context.Context, deliveryID string) ([]DeliveryAttempt, error) {
	var out []DeliveryAttempt
	if err := s.db.WithContext(ctx).Where("delivery_id = ?", deliveryID).Order("attempt_number").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list attempts of %s: %w", deliveryID, translate(err, "Delivery"))
	}
	return out, nil
}
