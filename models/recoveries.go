package models

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Recovery states (DESIGN §10).
const (
	RecoveryRunning   = "running"
	RecoveryCompleted = "completed"
)

// Recovery item states: planned, then redelivered (its delivery reopened),
// then succeeded or failed; skipped when it could not be reopened (a newer
// event of its asset was sent meanwhile, someone redelivered it first) or
// a newer event superseded it during the recovery. Skipped items count in
// none of the totals.
const (
	ItemPlanned     = "planned"
	ItemRedelivered = "redelivered"
	ItemSucceeded   = "succeeded"
	ItemFailed      = "failed"
	ItemSkipped     = "skipped"
)

// Recovery is one recover/ request: redeliver the failed deliveries of a
// webhook whose events were accepted in [Since, Until).
type Recovery struct {
	ID             string `gorm:"primaryKey"`
	OrganizationID string
	WebhookID      string
	Since          time.Time
	Until          *time.Time
	WorkflowID     string
	State          string
	Planned        bool
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// TableName pins the table name.
func (Recovery) TableName() string { return "recoveries" }

// RecoveryProgress is a recovery with its counts.
type RecoveryProgress struct {
	Recovery
	Total, Redelivered, Succeeded, Failed int64
}

// CreateRecovery records a recovery of an active webhook of the
// organization; an inactive one is ECONFLICT. The caller starts its
// workflow (WorkflowID) and deletes the row if that fails.
func (s *Store) CreateRecovery(ctx context.Context, orgID, webhookID string, since time.Time, until *time.Time, workflowIDOf func(id string) string) (*Recovery, error) {
	w, err := s.GetWebhook(ctx, orgID, webhookID)
	if err != nil {
		return nil, err
	}
	if !w.IsActive {
		return nil, Errorf(ECONFLICT, "The webhook is inactive; re-enable it (is_active) before recovering its deliveries.")
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	id := "rec_" + hex.EncodeToString(b[:])
	ts := now()
	r := &Recovery{ID: id, OrganizationID: orgID, WebhookID: w.ID, Since: since.UTC(), WorkflowID: workflowIDOf(id),
		State: RecoveryRunning, CreatedAt: ts, UpdatedAt: ts}
	if until != nil {
		u := until.UTC()
		r.Until = &u
	}
	if err := s.db.WithContext(ctx).Create(r).Error; err != nil {
		return nil, fmt.Errorf("create recovery: %w", translate(err, "Recovery"))
	}
	return r, nil
}

// DeleteRecovery removes a recovery whose workflow could not be started
// (it has no items yet).
func (s *Store) DeleteRecovery(ctx context.Context, id string) error {
	err := s.transact(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("recovery_id = ?", id).Delete(&RecoveryItem{}).Error; err != nil {
			return err
		}
		return tx.Where("id = ?", id).Delete(&Recovery{}).Error
	})
	if err != nil {
		return fmt.Errorf("delete recovery %s: %w", id, translate(err, "Recovery"))
	}
	return nil
}

// RecoveryItem is one delivery a recovery redelivers.
type RecoveryItem struct {
	RecoveryID string `gorm:"primaryKey"`
	DeliveryID string `gorm:"primaryKey"`
	State      string
}

// TableName pins the table name.
func (RecoveryItem) TableName() string { return "recovery_items" }

// GetRecovery loads a recovery of a webhook of the organization with its
// counts. Counts of items still being redelivered follow their
// deliveries live.
func (s *Store) GetRecovery(ctx context.Context, orgID, webhookID, id string) (*RecoveryProgress, error) {
	var r RecoveryProgress
	db := s.db.WithContext(ctx)
	if err := db.Where("id = ? AND organization_id = ? AND webhook_id = ?", id, orgID, webhookID).Take(&r.Recovery).Error; err != nil {
		return nil, fmt.Errorf("get recovery %s: %w", id, translate(err, "Recovery"))
	}
	err := db.Raw(`SELECT
	    COALESCE(SUM(CASE WHEN i.state <> 'skipped' THEN 1 ELSE 0 END), 0) AS total,
	    COALESCE(SUM(CASE WHEN i.state IN ('redelivered', 'succeeded', 'failed') THEN 1 ELSE 0 END), 0) AS redelivered,
	    COALESCE(SUM(CASE WHEN i.state = 'succeeded' OR (i.state = 'redelivered' AND d.state = 'succeeded') THEN 1 ELSE 0 END), 0) AS succeeded,
	    COALESCE(SUM(CASE WHEN i.state = 'failed' OR (i.state = 'redelivered' AND d.state IN ('failed', 'cancelled')) THEN 1 ELSE 0 END), 0) AS failed
	FROM recovery_items i JOIN deliveries d ON d.id = i.delivery_id WHERE i.recovery_id = ?`, id).
		Row().Scan(&r.Total, &r.Redelivered, &r.Succeeded, &r.Failed)
	if err != nil {
		return nil, fmt.Errorf("count recovery %s: %w", id, translate(err, "Recovery"))
	}
	return &r, nil
}

// PlanRecovery lists, once, the deliveries a recovery redelivers, in one
// INSERT ... SELECT, and returns how many it holds: the failed deliveries
// of the webhook whose asset event was accepted in [since, until). For a
// webhook in delivery_mode latest only the newest per asset qualifies,
// and none of an asset whose newer delivery succeeded or is in progress
// (DESIGN §9, §10). Planning again returns the first plan.
func (s *Store) PlanRecovery(ctx context.Context, id string) (int64, error) {
	var n int64
	err := s.transact(ctx, func(tx *gorm.DB) error {
		var r Recovery
		if err := tx.Where("id = ?", id).Take(&r).Error; err != nil {
			return err
		}
		if !r.Planned {
			var w Webhook
			if err := tx.Unscoped().Select("id", "delivery_mode").Where("id = ?", r.WebhookID).Take(&w).Error; err != nil {
				return err
			}
			window := "e.received_at >= ?"
			args := []any{r.Since}
			if r.Until != nil {
				window += " AND e.received_at < ?"
				args = append(args, *r.Until)
			}
			q := `INSERT INTO recovery_items (recovery_id, delivery_id, state)
			SELECT ?, d.id, 'planned' FROM deliveries d JOIN asset_events e ON e.id = d.event_id
			WHERE d.webhook_id = ? AND d.state = 'failed' AND e.kind = 'asset' AND ` + window
			all := append([]any{r.ID, r.WebhookID}, args...)
			if w.DeliveryMode != DeliveryAll {
				newer := `SELECT 1 FROM deliveries d2 JOIN asset_events e2 ON e2.id = d2.event_id
				WHERE d2.webhook_id = d.webhook_id AND e2.organization_id = e.organization_id AND e2.asset_id = e.asset_id
				  AND e2.kind = 'asset' AND e2.sequence > e.sequence
				  AND (d2.state IN ('succeeded', 'pending') OR (d2.state = 'failed' AND ` + strings.ReplaceAll(window, "e.", "e2.") + `))`
				q += " AND NOT EXISTS (" + newer + ")"
				all = append(all, args...)
			}
			q += " ON CONFLICT DO NOTHING"
			if err := tx.Exec(q, all...).Error; err != nil {
				return err
			}
			if err := tx.Model(&Recovery{}).Where("id = ?", r.ID).Updates(map[string]any{"planned": true, "updated_at": now()}).Error; err != nil {
				return err
			}
		}
		return tx.Model(&RecoveryItem{}).Where("recovery_id = ?", r.ID).Count(&n).Error
	})
	if err != nil {
		return 0, fmt.Errorf("plan recovery %s: %w", id, translate(err, "Recovery"))
	}
	return n, nil
}

// RecoveredDelivery is a delivery a recovery reopened: its Redeliver
// workflow is to be started with WorkflowID.
type RecoveredDelivery struct {
	DeliveryID  string
	WebhookID   string
	AssetID     string
	AssetStatus string
	WorkflowID  string
	Force       bool
}

// ReopenRecoveryItems reopens up to limit planned items of a recovery, in
// acceptance order, each in one transaction with its item, so an item is
// redelivered exactly when its delivery was reopened. The owner of each
// reopened delivery is ownerOf(delivery id, its next attempt number). In
// delivery_mode all every item is sent, in sequence order (force past
// newer sends: the customer asked for all of them); in latest a stale
// item is skipped. An empty result means nothing is left to reopen.
func (s *Store) ReopenRecoveryItems(ctx context.Context, id string, limit int, ownerOf func(deliveryID string, attempt int) string) ([]RecoveredDelivery, error) {
	var r Recovery
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		return nil, fmt.Errorf("load recovery %s: %w", id, translate(err, "Recovery"))
	}
	var w Webhook
	if err := s.db.WithContext(ctx).Unscoped().Select("id", "delivery_mode").Where("id = ?", r.WebhookID).Take(&w).Error; err != nil {
		return nil, fmt.Errorf("load webhook of recovery %s: %w", id, translate(err, "Webhook"))
	}
	force := w.DeliveryMode == DeliveryAll
	var todo []DeliveryView
	err := s.db.WithContext(ctx).Table("recovery_items AS i").
		Select("d.*, e.asset_id, e.asset_status").
		Joins("JOIN deliveries AS d ON d.id = i.delivery_id").Joins("JOIN asset_events AS e ON e.id = d.event_id").
		Where("i.recovery_id = ? AND i.state = ?", id, ItemPlanned).Order("e.received_at, e.sequence, d.id").Limit(limit).Scan(&todo).Error
	if err != nil {
		return nil, fmt.Errorf("list items of recovery %s: %w", id, translate(err, "Recovery"))
	}
	out := make([]RecoveredDelivery, 0, len(todo))
	for _, v := range todo {
		owner := ownerOf(v.ID, v.AttemptCount+1)
		reopened := false
		err := s.transact(ctx, func(tx *gorm.DB) error {
			var d Delivery
			if err := tx.Where("id = ?", v.ID).Take(&d).Error; err != nil {
				return err
			}
			state := ItemSkipped
			err := reopenDelivery(tx, &d, WorkflowRun{WorkflowID: owner}, force)
			switch {
			case err == nil:
				state, reopened = ItemRedelivered, true
			case ErrorCode(err) != ECONFLICT:
				return err
			}
			return tx.Model(&RecoveryItem{}).Where("recovery_id = ? AND delivery_id = ? AND state = ?", id, v.ID, ItemPlanned).
				Update("state", state).Error
		})
		if err != nil {
			return nil, fmt.Errorf("reopen delivery %s of recovery %s: %w", v.ID, id, translate(err, "Delivery"))
		}
		if reopened {
			out = append(out, RecoveredDelivery{DeliveryID: v.ID, WebhookID: v.WebhookID, AssetID: v.AssetID, AssetStatus: v.AssetStatus, WorkflowID: owner, Force: force})
		}
	}
	if len(out) == 0 && len(todo) > 0 {
		// Every item of this page was skipped: say "more" with an
		// empty-but-not-final page by trying the next one.
		return s.ReopenRecoveryItems(ctx, id, limit, ownerOf)
	}
	return out, nil
}

// SettleRecovery records the outcome of every redelivered item whose
// delivery has ended, and returns how many items are still planned or in
// progress; at 0 the recovery is completed.
func (s *Store) SettleRecovery(ctx context.Context, id string) (int64, error) {
	var left int64
	err := s.transact(ctx, func(tx *gorm.DB) error {
		for state, ends := range map[string][]DeliveryState{
			ItemSucceeded: {DeliverySucceeded},
			ItemFailed:    {DeliveryFailed, DeliveryCancelled},
			ItemSkipped:   {DeliverySuperseded},
		} {
			if err := tx.Exec(`UPDATE recovery_items SET state = ? WHERE recovery_id = ? AND state = ?
			    AND delivery_id IN (SELECT id FROM deliveries WHERE state IN ?)`, state, id, ItemRedelivered, ends).Error; err != nil {
				return err
			}
		}
		if err := tx.Model(&RecoveryItem{}).Where("recovery_id = ? AND state IN ?", id, []string{ItemPlanned, ItemRedelivered}).Count(&left).Error; err != nil {
			return err
		}
		if left == 0 {
			return tx.Model(&Recovery{}).Where("id = ? AND planned", id).Updates(map[string]any{"state": RecoveryCompleted, "updated_at": now()}).Error
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("settle recovery %s: %w", id, translate(err, "Recovery"))
	}
	return left, nil
}
