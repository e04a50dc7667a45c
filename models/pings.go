package models

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// CreatePing stores a test event with payload for one webhook and its
// pending delivery, so a ping is sent and recorded like any delivery.
func (s *Store) CreatePing(ctx context.Context, orgID, webhookID string, payload []byte) (*Delivery, error) {
	var d Delivery
	err := s.transact(ctx, func(tx *gorm.DB) error {
		w, err := s.getWebhook(tx, orgID, webhookID)
		if err != nil {
			return err
		}
		ts := now()
		ev := AssetEvent{ID: "ping_" + uuid.NewString(), OrganizationID: orgID, Kind: EventPing, Payload: payload, ReceivedAt: ts, WorkflowStartedAt: &ts, PreparedAt: &ts}
		if err := tx.Create(&ev).Error; err != nil {
			return err
		}
		d = Delivery{ID: DeliveryID(ev.ID, w.ID), EventID: ev.ID, WebhookID: w.ID, OrganizationID: orgID,
			State: DeliveryPending, NextAttemptAt: &ts, CreatedAt: ts, UpdatedAt: ts}
		return tx.Create(&d).Error
	})
	if err != nil {
		return nil, fmt.Errorf("create ping for webhook %s: %w", webhookID, translate(err, "Webhook"))
	}
	return &d, nil
}
