package models

import (
	"context"

	"gorm.io/gorm"
)

// Transact exposes transact to the external tests.
func (s *Store) Transact(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.transact(ctx, fn)
}
