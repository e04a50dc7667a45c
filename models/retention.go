package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// DefaultRetention is how long ended events are kept (DESIGN §10).
const DefaultRetention = 720 * time.Hour

// AssetSequence is the highest sequence of an asset's deleted events, so
// that retention never lets a sequence go back (DESIGN §9).
type AssetSequence struct {
	OrganizationID string `gorm:"primaryKey"`
	AssetID        string `gorm:"primaryKey"`
	LastSequence   int64
}

// TableName pins the table name.
func (AssetSequence) TableName() string { return "asset_sequences" }

// DeleteExpired deletes up to limit events accepted before cutoff whose
// deliveries have all ended, with their deliveries, attempts and recovery
// items, and returns how many events it deleted. An event not yet
// started, not yet prepared, or with any pending delivery is never
// touched: a delivery reopened concurrently (a redelivery) is locked and
// seen, and its event kept.
func (s *Store) DeleteExpired(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	deleted := 0
	err := s.transact(ctx, func(tx *gorm.DB) error {
		var ids []string
		err := tx.Model(&AssetEvent{}).Where(`received_at < ? AND workflow_started_at IS NOT NULL AND prepared_at IS NOT NULL
		    AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = asset_events.id AND d.state = ?)`, cutoff.UTC(), DeliveryPending).
			Order("received_at, id").Limit(limit).Pluck("id", &ids).Error
		if err != nil || len(ids) == 0 {
			return err
		}
		// Lock their deliveries, then look again: a redelivery that
		// reopened one before the lock is seen pending now, one after it
		// waits for this transaction and then finds no row (404).
		lock := tx.Model(&Delivery{}).Where("event_id IN ?", ids)
		if s.Dialect() == DialectPostgres {
			lock = lock.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		var dels []Delivery
		if err := lock.Select("id", "event_id", "state").Find(&dels).Error; err != nil {
			return err
		}
		busy := map[string]bool{}
		for _, d := range dels {
			if d.State == DeliveryPending {
				busy[d.EventID] = true
			}
		}
		keep := ids[:0]
		for _, id := range ids {
			if !busy[id] {
				keep = append(keep, id)
			}
		}
		if len(keep) == 0 {
			return nil
		}
		// The floor of each asset's sequence first, in the same
		// transaction, so a new event never reuses a deleted number.
		greatest := "GREATEST"
		if s.Dialect() == DialectSQLite {
			greatest = "MAX"
		}
		if err := tx.Exec(`INSERT INTO asset_sequences (organization_id, asset_id, last_sequence)
		    SELECT organization_id, asset_id, MAX(sequence) FROM asset_events WHERE id IN ? AND kind = 'asset' GROUP BY organization_id, asset_id
		    ON CONFLICT (organization_id, asset_id) DO UPDATE SET last_sequence = `+greatest+`(asset_sequences.last_sequence, excluded.last_sequence)`, keep).Error; err != nil {
			return err
		}
		inDeliveries := tx.Model(&Delivery{}).Select("id").Where("event_id IN ?", keep)
		if err := tx.Where("delivery_id IN (?)", inDeliveries).Delete(&RecoveryItem{}).Error; err != nil {
			return err
		}
		if err := tx.Where("delivery_id IN (?)", inDeliveries).Delete(&DeliveryAttempt{}).Error; err != nil {
			return err
		}
		if err := tx.Where("event_id IN ?", keep).Delete(&Delivery{}).Error; err != nil {
			return err
		}
		res := tx.Where("id IN ?", keep).Delete(&AssetEvent{})
		deleted = int(res.RowsAffected)
		if res.Error != nil {
			return res.Error
		}
		// Completed recoveries with nothing left to show go too.
		return tx.Where("state = ? AND updated_at < ? AND NOT EXISTS (SELECT 1 FROM recovery_items i WHERE i.recovery_id = recoveries.id)",
			RecoveryCompleted, cutoff.UTC()).Delete(&Recovery{}).Error
	})
	if err != nil {
		return 0, fmt.Errorf("delete expired events: %w", translate(err, "Event"))
	}
	return deleted, nil
}
