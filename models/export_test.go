package models

import (
	"context"

	"gorm.io/gorm"
)

// Transact exposes transact to the external tests.
func (s *Store) Transact(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.transact(ctx, fn)
}

// StoredSecret returns a webhook's secret_token column exactly as stored
// (encrypted when a key is set), for the tests: no non-test code
// reads the raw column.
func (s *Store) StoredSecret(ctx context.Context, webhookID string) (string, error) {
	var v string
	err := s.db.WithContext(ctx).Unscoped().Model(&Webhook{}).Select("secret_token").Where("id = ?", webhookID).Scan(&v).Error
	return v, translate(err, "Webhook")
}

// EventColumns exposes the columns CreateEvent writes to the external tests.
func EventColumns() []string {
	cols, _ := eventColumns(&AssetEvent{})
	return cols
}
