package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
)

// AssetEvent is one asset status change signalled by a platform service.
// Payload holds the asset JSON exactly as received.
type AssetEvent struct {
	ID             string `gorm:"primaryKey"`
	OrganizationID string
	Kind           string // EventAsset, or EventPing for a test delivery
	AssetID        string
	AssetStatus    string
	// AssetType is video, livestream, or "" when the asset says neither
	// (the asset_types filter, DESIGN §10).
	AssetType         string
	Payload           []byte
	ReceivedAt        time.Time
	WorkflowID        string
	WorkflowStartedAt *time.Time
	// The outbox: how often starting the workflow failed, when the next
	// try is due, and why the last one failed.
	StartAttempts  int
	NextStartAt    *time.Time
	LastStartError string
	// PreparedAt is when the event's deliveries were created.
	PreparedAt *time.Time
	// Sequence numbers the asset events of one (organization, asset) in
	// acceptance order, from 1 (DESIGN §9); 0 for a ping.
	Sequence int64
}

// TableName pins the table name.
func (AssetEvent) TableName() string { return "asset_events" }

// Event kinds.
const (
	EventAsset = "asset"
	EventPing  = "ping"
)

// maxSequenceTries bounds the inserts of one event whose sequence
// collided with a concurrent event of the same asset (PostgreSQL): each
// collision means another event of it committed, so N concurrent events
// of one asset need at most N-1.
const maxSequenceTries = 200

// CreateEvent stores an event unless one with the same id exists. It returns
// the stored row (the earlier one for a repeated id) and whether it was new.
// An asset event takes the next sequence of its (organization, asset) in
// the same statement (DESIGN §9); a repeated id takes none.
func (s *Store) CreateEvent(ctx context.Context, ev *AssetEvent) (*AssetEvent, bool, error) {
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = now()
	}
	if ev.Kind == "" {
		ev.Kind = EventAsset
	}
	if ev.WorkflowStartedAt == nil && ev.NextStartAt == nil {
		due := ev.ReceivedAt
		ev.NextStartAt = &due
	}
	seq := gorm.Expr("0")
	if ev.Kind == EventAsset {
		// kind = 'asset' is spelled as in the partial index, so the
		// lookup of the highest number is an index probe, not a scan.
		// Retention keeps the highest deleted number in asset_sequences:
		// the next is above both.
		greatest := "GREATEST"
		if s.Dialect() == DialectSQLite {
			greatest = "MAX"
		}
		seq = gorm.Expr("(SELECT "+greatest+"(COALESCE(MAX(e.sequence), 0), COALESCE((SELECT f.last_sequence FROM asset_sequences f WHERE f.organization_id = ? AND f.asset_id = ?), 0)) + 1 FROM asset_events e WHERE e.organization_id = ? AND e.asset_id = ? AND e.kind = 'asset')",
			ev.OrganizationID, ev.AssetID, ev.OrganizationID, ev.AssetID)
	}
	cols, vals := eventColumns(ev)
	query := "INSERT INTO asset_events (" + strings.Join(cols, ", ") + ", sequence) VALUES (" +
		strings.Repeat("?, ", len(cols)) + "?) ON CONFLICT (id) DO NOTHING RETURNING sequence"
	var err error
	for try := 0; ; try++ {
		err = s.db.WithContext(ctx).Raw(query, append(vals, seq)...).Row().Scan(&ev.Sequence)
		if err == nil || !isUniqueViolation(err) || try >= maxSequenceTries || ctx.Err() != nil {
			break
		}
	}
	switch {
	case err == nil:
		return ev, true, nil
	case !errors.Is(err, sql.ErrNoRows): // no row: the id is stored already
		return nil, false, fmt.Errorf("create event %s: %w", ev.ID, translate(err, "Event"))
	}
	stored, err := s.GetEvent(ctx, ev.ID)
	if err != nil {
		return nil, false, err
	}
	return stored, false, nil
}

// eventColumns lists the columns CreateEvent writes, but sequence, with
// ev's values (TestEventColumnsCoverTheModel keeps it in step with
// AssetEvent).
func eventColumns(ev *AssetEvent) ([]string, []any) {
	return []string{"id", "organization_id", "kind", "asset_id", "asset_status", "asset_type", "payload", "received_at",
			"workflow_id", "workflow_started_at", "start_attempts", "next_start_at", "last_start_error", "prepared_at"},
		[]any{ev.ID, ev.OrganizationID, ev.Kind, ev.AssetID, ev.AssetStatus, ev.AssetType, ev.Payload, ev.ReceivedAt,
			ev.WorkflowID, ev.WorkflowStartedAt, ev.StartAttempts, ev.NextStartAt, ev.LastStartError, ev.PreparedAt}
}

// GetEvent loads an event by id.
func (s *Store) GetEvent(ctx context.Context, id string) (*AssetEvent, error) {
	var ev AssetEvent
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&ev).Error; err != nil {
		return nil, fmt.Errorf("get event %s: %w", id, translate(err, "Event"))
	}
	return &ev, nil
}

// MarkEventsStarted records that the workflows of these events have been
// started, so the outbox no longer offers them.
func (s *Store) MarkEventsStarted(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	err := s.db.WithContext(ctx).Model(&AssetEvent{}).Where("id IN ? AND workflow_started_at IS NULL", ids).
		Updates(map[string]any{"workflow_started_at": now(), "next_start_at": nil, "last_start_error": ""}).Error
	if err != nil {
		return fmt.Errorf("mark %d events started: %w", len(ids), translate(err, "Event"))
	}
	return nil
}

// SetEventWorkflowID replaces the stored workflow id of an event (one
// stored before ids were made ASCII, which no start could use).
func (s *Store) SetEventWorkflowID(ctx context.Context, id, workflowID string) error {
	err := s.db.WithContext(ctx).Model(&AssetEvent{}).Where("id = ?", id).Update("workflow_id", workflowID).Error
	if err != nil {
		return fmt.Errorf("set workflow id of event %s: %w", id, translate(err, "Event"))
	}
	return nil
}

// DeferEventStart records a failed workflow start and when to try again,
// so the event steps out of the way of the events behind it.
func (s *Store) DeferEventStart(ctx context.Context, id string, next time.Time, reason string) error {
	if len(reason) > 500 {
		reason = TruncateUTF8(reason, 500)
	}
	next = next.UTC()
	err := s.db.WithContext(ctx).Model(&AssetEvent{}).Where("id = ? AND workflow_started_at IS NULL", id).
		Updates(map[string]any{"start_attempts": gorm.Expr("start_attempts + 1"), "next_start_at": next, "last_start_error": reason}).Error
	if err != nil {
		return fmt.Errorf("defer start of event %s: %w", id, translate(err, "Event"))
	}
	return nil
}

// DueEvents lists unstarted events whose next start is due at or before
// cutoff, the longest-waiting first: the outbox the dispatcher drains.
func (s *Store) DueEvents(ctx context.Context, cutoff time.Time, limit int) ([]AssetEvent, error) {
	var out []AssetEvent
	err := s.db.WithContext(ctx).Omit("payload").
		Where("workflow_started_at IS NULL AND next_start_at <= ?", cutoff.UTC()).
		Order("next_start_at, id").Limit(limit).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list due events: %w", translate(err, "Event"))
	}
	return out, nil
}

// UnstartedEvents counts events whose workflow has not been started (a
// metrics gauge: the outbox backlog).
func (s *Store) UnstartedEvents(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&AssetEvent{}).Where("workflow_started_at IS NULL").Count(&n).Error
	return n, translate(err, "Event")
}

// UnpreparedEvents lists events started before cutoff whose deliveries were
// never created: candidates for the reconciler, which resumes those whose
// workflow is no longer running.
func (s *Store) UnpreparedEvents(ctx context.Context, cutoff time.Time, limit int) ([]AssetEvent, error) {
	var out []AssetEvent
	err := s.db.WithContext(ctx).Omit("payload").
		Where("prepared_at IS NULL AND workflow_started_at IS NOT NULL AND workflow_started_at < ?", cutoff.UTC()).
		Order("workflow_started_at, id").Limit(limit).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list unprepared events: %w", translate(err, "Event"))
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

// TruncateUTF8 cuts s to at most n bytes on a character boundary: a cut
// character would be invalid UTF-8, which PostgreSQL refuses in a text
// column.
func TruncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
