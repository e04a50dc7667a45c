package models

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// Webhook is an endpoint of an organization that receives every asset event.
type Webhook struct {
	ID                string `gorm:"primaryKey"`
	OrganizationID    string
	URL               string `gorm:"column:url"`
	SecretToken       string
	IsActive          bool
	DeactivatedReason string
	FailingSince      *time.Time
	DeliveryMode      DeliveryMode
	// Statuses and AssetTypes filter the events the webhook gets
	// (DESIGN §10); empty means all.
	Statuses   StringList
	AssetTypes StringList
	// PreviousSecretToken, until PreviousSecretExpiresAt, signs every
	// attempt beside SecretToken (rotate-secret/).
	PreviousSecretToken     string
	PreviousSecretExpiresAt *time.Time
	CreatedAt               time.Time
	UpdatedAt               time.Time
	DeletedAt               gorm.DeletedAt
}

// TableName pins the table name so GORM's naming rules can never drift from
// the migrations.
func (Webhook) TableName() string { return "webhooks" }

// WebhookUpdate lists the fields to change; nil fields stay as they are.
type WebhookUpdate struct {
	URL         *string
	SecretToken *string
	IsActive    *bool
	// DeliveryMode is latest or all (DESIGN §9); empty on create means
	// latest.
	DeliveryMode *DeliveryMode
	// Statuses and AssetTypes replace the filters (canonical values; an
	// empty list means all).
	Statuses   *StringList
	AssetTypes *StringList
}

// Page selects a window of a list.
type Page struct {
	Limit  int
	Offset int
}

// CreateWebhook registers a new endpoint for an organization, active unless
// in.IsActive says otherwise. in.URL and in.SecretToken are required. Input
// is validated by the caller (the API), which owns the field-level messages.
func (s *Store) CreateWebhook(ctx context.Context, orgID string, in WebhookUpdate) (*Webhook, error) {
	if in.URL == nil || in.SecretToken == nil {
		return nil, Errorf(EINVALID, "A webhook needs a url and a secret_token.")
	}
	id := uuid.NewString()
	w := &Webhook{ID: id, OrganizationID: orgID, URL: *in.URL, SecretToken: s.sealSecret(id, *in.SecretToken), IsActive: true, DeliveryMode: DeliveryLatest}
	if in.DeliveryMode != nil && *in.DeliveryMode != "" {
		w.DeliveryMode = *in.DeliveryMode
	}
	if in.IsActive != nil && !*in.IsActive {
		w.IsActive, w.DeactivatedReason = false, "Deactivated through the API."
	}
	if in.Statuses != nil {
		w.Statuses = *in.Statuses
	}
	if in.AssetTypes != nil {
		w.AssetTypes = *in.AssetTypes
	}
	if err := s.db.WithContext(ctx).Create(w).Error; err != nil {
		return nil, fmt.Errorf("create webhook: %w", translate(err, "Webhook"))
	}
	w.SecretToken = *in.SecretToken
	return w, nil
}

// GetWebhook loads a live webhook of an organization. A malformed id, an id
// of another organization and a deleted webhook are all ENOTFOUND.
func (s *Store) GetWebhook(ctx context.Context, orgID, id string) (*Webhook, error) {
	return s.getWebhook(s.db.WithContext(ctx), orgID, id)
}

func (s *Store) getWebhook(db *gorm.DB, orgID, id string) (*Webhook, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, Errorf(ENOTFOUND, "Webhook not found.")
	}
	var w Webhook
	if err := db.Where("id = ? AND organization_id = ?", id, orgID).Take(&w).Error; err != nil {
		return nil, fmt.Errorf("get webhook %s: %w", id, translate(err, "Webhook"))
	}
	if err := s.openSecret(&w); err != nil {
		return nil, err
	}
	return &w, nil
}

// ListWebhooks returns one page of an organization's live webhooks, oldest
// first, and the total count.
func (s *Store) ListWebhooks(ctx context.Context, orgID string, page Page) ([]Webhook, int64, error) {
	db := s.db.WithContext(ctx).Model(&Webhook{}).Where("organization_id = ?", orgID)
	var total int64
	if err := db.Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count webhooks: %w", translate(err, "Webhook"))
	}
	var out []Webhook
	if err := db.Order("created_at, id").Limit(page.Limit).Offset(page.Offset).Find(&out).Error; err != nil {
		return nil, 0, fmt.Errorf("list webhooks: %w", translate(err, "Webhook"))
	}
	for i := range out {
		if err := s.openSecret(&out[i]); err != nil {
			return nil, 0, err
		}
	}
	return out, total, nil
}

// UpdateWebhook changes the given fields of a live webhook. Re-activating
// clears the deactivation reason; deactivating cancels pending deliveries.
func (s *Store) UpdateWebhook(ctx context.Context, orgID, id string, upd WebhookUpdate) (*Webhook, error) {
	var out *Webhook
	err := s.transact(ctx, func(tx *gorm.DB) error {
		w, err := s.getWebhook(tx, orgID, id)
		if err != nil {
			return err
		}
		changes := map[string]any{"updated_at": now()}
		if upd.URL != nil {
			changes["url"] = *upd.URL
		}
		if upd.SecretToken != nil {
			// A secret set by PUT/PATCH applies at once, with no grace
			// (DESIGN §10): the previous one stops signing too.
			changes["secret_token"] = s.sealSecret(w.ID, *upd.SecretToken)
			changes["previous_secret_token"] = ""
			changes["previous_secret_expires_at"] = nil
		}
		if upd.Statuses != nil {
			changes["statuses"] = *upd.Statuses
		}
		if upd.AssetTypes != nil {
			changes["asset_types"] = *upd.AssetTypes
		}
		if upd.DeliveryMode != nil {
			changes["delivery_mode"] = *upd.DeliveryMode
		}
		if upd.IsActive != nil && *upd.IsActive != w.IsActive {
			changes["is_active"] = *upd.IsActive
			if *upd.IsActive {
				changes["deactivated_reason"] = ""
				changes["failing_since"] = nil
			} else {
				changes["deactivated_reason"] = "Deactivated through the API."
				if err := cancelPendingDeliveries(tx, w.ID); err != nil {
					return err
				}
			}
		}
		if err := tx.Model(&Webhook{}).Where("id = ?", w.ID).Updates(changes).Error; err != nil {
			return err
		}
		out, err = s.getWebhook(tx, orgID, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("update webhook %s: %w", id, translate(err, "Webhook"))
	}
	return out, nil
}

// MaxSecretGrace is the longest grace window of a rotated secret.
const MaxSecretGrace = 7 * 24 * time.Hour

// RotateSecret makes secret the webhook's secret and keeps the current one
// signing, as a second signature, for grace (DESIGN §10). A zero grace
// drops the old secret at once. Rotating again within a grace window
// replaces the previous secret with the one being rotated out: a receiver
// verifies against the newest two.
func (s *Store) RotateSecret(ctx context.Context, orgID, id, secret string, grace time.Duration) (*Webhook, error) {
	if secret == "" || grace < 0 || grace > MaxSecretGrace {
		return nil, Errorf(EINVALID, "A rotation needs a secret and a grace period of at most 7 days.")
	}
	var out *Webhook
	err := s.transact(ctx, func(tx *gorm.DB) error {
		w, err := s.getWebhook(tx, orgID, id)
		if err != nil {
			return err
		}
		ts := now()
		changes := map[string]any{"updated_at": ts, "secret_token": s.sealSecret(w.ID, secret),
			"previous_secret_token": "", "previous_secret_expires_at": nil}
		if grace > 0 {
			until := ts.Add(grace)
			changes["previous_secret_token"] = s.sealSecret(w.ID, w.SecretToken)
			changes["previous_secret_expires_at"] = until
		}
		if err := tx.Model(&Webhook{}).Where("id = ?", w.ID).Updates(changes).Error; err != nil {
			return err
		}
		out, err = s.getWebhook(tx, orgID, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("rotate secret of webhook %s: %w", id, translate(err, "Webhook"))
	}
	return out, nil
}

// DeleteWebhook soft-deletes a webhook (its deliveries and attempts stay for
// audit), erases its secret and cancels its pending deliveries.
func (s *Store) DeleteWebhook(ctx context.Context, orgID, id string) error {
	err := s.transact(ctx, func(tx *gorm.DB) error {
		w, err := s.getWebhook(tx, orgID, id)
		if err != nil {
			return err
		}
		ts := now()
		if err := tx.Model(&Webhook{}).Where("id = ?", w.ID).Updates(map[string]any{
			"deleted_at": ts, "updated_at": ts, "secret_token": "", "is_active": false,
			"previous_secret_token": "", "previous_secret_expires_at": nil,
			"deactivated_reason": "Deleted through the API.",
		}).Error; err != nil {
			return err
		}
		if err := cancelPendingDeliveries(tx, w.ID); err != nil {
			return err
		}
		// Its turns mean nothing any more: an attempt still in flight
		// finds no turn to give back, which is fine.
		return tx.Where("webhook_id = ?", w.ID).Delete(&DeliveryTurn{}).Error
	})
	if err != nil {
		return fmt.Errorf("delete webhook %s: %w", id, translate(err, "Webhook"))
	}
	return nil
}

// cancelPendingDeliveries ends every pending delivery of a webhook. Their
// workflows notice at their next attempt and stop.
func cancelPendingDeliveries(tx *gorm.DB, webhookID string) error {
	return tx.Table("deliveries").Where("webhook_id = ? AND state = ?", webhookID, DeliveryPending).
		Updates(map[string]any{"state": DeliveryCancelled, "next_attempt_at": nil, "updated_at": now()}).Error
}

// WebhookURLs returns the URLs of the given webhooks (deleted ones too) by
// id, in one query and without touching their secrets: what a workflow
// needs for its summaries.
func (s *Store) WebhookURLs(ctx context.Context, ids []string) (map[string]string, error) {
	var rows []Webhook
	if err := s.db.WithContext(ctx).Unscoped().Select("id", "url").Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("load webhook urls: %w", translate(err, "Webhook"))
	}
	out := make(map[string]string, len(rows))
	for _, w := range rows {
		out[w.ID] = w.URL
	}
	return out, nil
}
