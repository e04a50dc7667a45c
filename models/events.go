package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// AssetEvent is one asset status change signalled by a platform service.
// Payload holds the asset JSON exactly as received.
type AssetEvent struct {
	ID                string `gorm:"primaryKey"`
	OrganizationID    string
	Kind              string // EventAsset, or EventPing for a test delivery
	AssetID           string
	AssetStatus       string
	Payload           []byte
	ReceivedAt        time.Time
	WorkflowID        string
	WorkflowStartedAt *time.Time
}

// TableName pins the table name.
func (AssetEvent) TableName() string { return "asset_events" }

// Event kinds.
const (
	EventAsset = "asset"
	EventPing  = "ping"
)

// CreateEvent stores an event unless one with the same id exists. It returns
// the stored row (the earlier one for a repeated id) and whether it was new.
func (s *Store) CreateEvent(ctx context.Context, ev *AssetEvent) (*AssetEvent, bool, error) {
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = now()
	}
	if ev.Kind == "" {
		ev.Kind = EventAsset
	}
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(ev)
	if res.Error != nil {
		return nil, false, fmt.Errorf("create event %s: %w", ev.ID, translate(res.Error, "Event"))
	}
	if res.RowsAffected == 1 {
		return ev, true, nil
	}
	stored, err := s.GetEvent(ctx, ev.ID)
	if err != nil {
		return nil, false, err
	}
	return stored, false, nil
}

// GetEvent loads an event by id.
func (s *Store) GetEvent(ctx context.Context, id string) (*AssetEvent, error) {
	var ev AssetEvent
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&ev).Error; err != nil {
		return nil, fmt.Errorf("get event %s: %w", id, translate(err, "Event"))
	}
	return &ev, nil
}

// MarkEventStarted records that the event's workflow has been started, so the
// relay no longer considers it.
func (s *Store) MarkEventStarted(ctx context.Context, id string) error {
	err := s.db.WithContext(ctx).Model(&AssetEvent{}).Where("id = ? AND workflow_started_at IS NULL", id).
		Update("workflow_started_at", now()).Error
	if err != nil {
		return fmt.Errorf("mark event %s started: %w", id, translate(err, "Event"))
	}
	return nil
}

// UnstartedEvents lists events received before cutoff whose workflow start
// was never confirmed: the outbox the relay drains after a crash between
// commit and start.
func (s *Store) UnstartedEvents(ctx context.Context, cutoff time.Time, limit int) ([]AssetEvent, error) {
	var out []AssetEvent
	err := s.db.WithContext(ctx).Omit("payload").
		Where("workflow_started_at IS NULL AND received_at < ?", cutoff).
		Order("received_at").Limit(limit).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list unstarted events: %w", translate(err, "Event"))
	}
	return out, nil
}

// eventExists is used inside transactions that must not proceed for an
// unknown event.
func eventExists(tx *gorm.DB, id string) (*AssetEvent, error) {
	var ev AssetEvent
	if err := tx.Omit("payload").Where("id = ?", id).Take(&ev).Error; err != nil {
		return nil, translate(err, "Event")
	}
	return &ev, nil
}
