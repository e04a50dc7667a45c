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
func (s *Store) RecordAttempt(ctx context.Context, a *DeliveryAttempt, out AttemptOutcome) error {
	err := s.transact(ctx, func(tx *gorm.DB) error {
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
		var d Delivery
		if err := tx.Select("webhook_id").Where("id = ?", a.DeliveryID).Take(&d).Error; err != nil {
			return err
		}
		reason, err := failureStreak(tx, d.WebhookID, a, out, ts)
		if err != nil || reason == "" {
			return err
		}
		if err := tx.Model(&Webhook{}).Where("id = ?", d.WebhookID).
			Updates(map[string]any{"is_active": false, "deactivated_reason": reason, "updated_at": ts}).Error; err != nil {
			return err
		}
		return cancelPendingDeliveries(tx, d.WebhookID)
	})
	if err != nil {
		return fmt.Errorf("record attempt %d of delivery %s: %w", a.AttemptNumber, a.DeliveryID, translate(err, "Delivery"))
	}
	return nil
}

// ListAttempts returns a delivery's attempts in order.
func (s *Store) ListAttempts(ctx context.Context, deliveryID string) ([]DeliveryAttempt, error) {
	var out []DeliveryAttempt
	if err := s.db.WithContext(ctx).Where("delivery_id = ?", deliveryID).Order("attempt_number").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list attempts of %s: %w", deliveryID, translate(err, "Delivery"))
	}
	return out, nil
}
