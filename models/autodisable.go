package models

import (
	"time"

	"gorm.io/gorm"
)

// failureStreak keeps the webhook's failing_since up to date (cleared by a
// success, set by the first failure after one) and returns why the webhook
// must be deactivated, or "".
func failureStreak(tx *gorm.DB, webhookID string, a *DeliveryAttempt, out AttemptOutcome, ts time.Time) (string, error) {
	if out.DeactivateReason != "" || out.Test {
		return out.DeactivateReason, nil
	}
	if a.ErrorClass == ErrorClassNone {
		return "", tx.Model(&Webhook{}).Where("id = ? AND failing_since IS NOT NULL", webhookID).Update("failing_since", nil).Error
	}
	if err := tx.Model(&Webhook{}).Where("id = ? AND failing_since IS NULL", webhookID).Update("failing_since", a.StartedAt).Error; err != nil {
		return "", err
	}
	if out.DisableAfter <= 0 {
		return "", nil
	}
	var w Webhook
	if err := tx.Unscoped().Select("failing_since", "is_active").Where("id = ?", webhookID).Take(&w).Error; err != nil {
		return "", err
	}
	if w.IsActive && w.FailingSince != nil && ts.Sub(*w.FailingSince) >= out.DisableAfter {
		return "Disabled automatically: every delivery attempt has failed since " + w.FailingSince.UTC().Format(time.RFC3339) + ".", nil
	}
	return "", nil
}
