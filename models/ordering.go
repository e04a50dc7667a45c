package models

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// DeliveryMode says how a webhook receives the states of one asset
// (DESIGN §9).
type DeliveryMode string

// Delivery modes.
const (
	// DeliveryLatest (the default) supersedes an older state not yet
	// delivered by a newer one: the receiver gets the newest state soon,
	// never an older one after it.
	DeliveryLatest DeliveryMode = "latest"
	// DeliveryAll delivers every state in sequence order: a newer one
	// waits until every older one has ended.
	DeliveryAll DeliveryMode = "all"
)

// Valid reports whether m is a known mode.
func (m DeliveryMode) Valid() bool { return m == DeliveryLatest || m == DeliveryAll }

// DeliveryTurn orders the attempts of one (webhook, asset): at most one in
// flight (Holder, until LeaseUntil) and nothing below SentSequence sent
// again.
type DeliveryTurn struct {
	WebhookID string `gorm:"primaryKey"`
	AssetID   string `gorm:"primaryKey"`
	// SentSequence is the highest sequence whose attempt was ever started.
	SentSequence int64
	// Holder is the delivery whose attempt is in flight, "" when none.
	Holder string
	// LeaseUntil ends the holder's turn should its worker die mid-attempt:
	// longer than an attempt activity may run, so the attempt is over by
	// then (its HTTP request has timed out).
	LeaseUntil *time.Time
}

// TableName pins the table name.
func (DeliveryTurn) TableName() string { return "delivery_turns" }

// TurnVerdict says whether a delivery may make its next attempt now.
type TurnVerdict string

// Turn verdicts.
const (
	// TurnGo: the turn is the delivery's; send, then record the attempt
	// (RecordAttempts gives the turn back).
	TurnGo TurnVerdict = "go"
	// TurnWait: not yet; ask again after Turn.Wait.
	TurnWait TurnVerdict = "wait"
	// TurnSuperseded: a newer event of the asset was sent, or is ready,
	// for the webhook: the delivery is now superseded, never to be sent.
	TurnSuperseded TurnVerdict = "superseded"
	// TurnSettled: the delivery is no longer pending.
	TurnSettled TurnVerdict = "settled"
)

// Turn is the verdict on one delivery's next attempt.
type Turn struct {
	Verdict TurnVerdict
	// SupersededBy is the newer sequence, for TurnSuperseded.
	SupersededBy int64
	// Wait, for TurnWait, is how long the blocker may take at most: the
	// rest of the lease of an attempt in flight (InFlight), or the time
	// until an older delivery's next attempt (delivery_mode all).
	Wait     time.Duration
	InFlight bool
}

// turnOther is a delivery of the same (webhook, asset) as one asking for
// its turn: pending, or of a newer event.
type turnOther struct {
	ID            string
	WebhookID     string
	State         DeliveryState
	Sequence      int64
	NextAttemptAt *time.Time
}

// TakeTurns decides, for deliveries of one event, whether each may make
// its next attempt now (DESIGN §9), in one transaction:
//
//   - a delivery below the highest sequence already sent to its webhook
//     is superseded; in delivery_mode latest so is one with a newer
//     delivery of the asset to the same webhook;
//   - in delivery_mode all, one waits while an older delivery of the
//     asset to the webhook is pending, or an older event has no
//     deliveries yet;
//   - one waits while another delivery of the (webhook, asset) has an
//     attempt in flight;
//   - otherwise the turn is taken: the delivery holds it for lease, and
//     in delivery_mode latest the older pending deliveries of the
//     (webhook, asset) are superseded at once.
//
// force (a redelivery the customer forced) skips the first two rules,
// never the third. Deliveries of events without a sequence (pings) always
// go. A delivery that holds the turn already takes it again (a retried
// activity).
func (s *Store) TakeTurns(ctx context.Context, ts []*DeliveryTarget, force bool, lease time.Duration) ([]Turn, error) {
	out := make([]Turn, len(ts))
	if len(ts) == 0 || ts[0].Sequence == 0 {
		for i := range out {
			out[i].Verdict = TurnGo
		}
		return out, nil
	}
	org, asset, seq := ts[0].Delivery.OrganizationID, ts[0].AssetID, ts[0].Sequence
	hooks := make([]string, 0, len(ts))
	anyAll := false
	for _, t := range ts {
		if t.Delivery.EventID != ts[0].Delivery.EventID {
			return nil, fmt.Errorf("take turns: deliveries of more than one event")
		}
		hooks = append(hooks, t.Delivery.WebhookID)
		anyAll = anyAll || t.Webhook.DeliveryMode == DeliveryAll
	}
	slices.Sort(hooks)
	hooks = slices.Compact(hooks)
	err := s.transact(ctx, func(tx *gorm.DB) error {
		clear(out)
		ts0 := now()
		// Rows in webhook id order: two events of one asset lock them in
		// the same order and never deadlock.
		rows := make([]DeliveryTurn, len(hooks))
		for i, h := range hooks {
			rows[i] = DeliveryTurn{WebhookID: h, AssetID: asset}
		}
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(&rows, insertBatch).Error; err != nil {
			return err
		}
		var turns []DeliveryTurn
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("asset_id = ? AND webhook_id IN ?", asset, hooks).
			Order("webhook_id").Find(&turns).Error; err != nil {
			return err
		}
		byHook := make(map[string]*DeliveryTurn, len(turns))
		for i := range turns {
			byHook[turns[i].WebhookID] = &turns[i]
		}
		var others []turnOther
		if err := tx.Table("deliveries AS d").Select("d.id, d.webhook_id, d.state, e.sequence, d.next_attempt_at").
			Joins("JOIN asset_events AS e ON e.id = d.event_id").
			Where("e.organization_id = ? AND e.asset_id = ? AND e.kind = 'asset' AND d.webhook_id IN ? AND (d.state = ? OR e.sequence > ?)",
				org, asset, hooks, DeliveryPending, seq).
			Find(&others).Error; err != nil {
			return err
		}
		unprepared := false
		if anyAll && !force {
			var n int64
			if err := tx.Model(&AssetEvent{}).Where("organization_id = ? AND asset_id = ? AND kind = 'asset' AND sequence < ? AND prepared_at IS NULL",
				org, asset, seq).Count(&n).Error; err != nil {
				return err
			}
			unprepared = n > 0
		}
		var supersede []superseding
		for i, t := range ts {
			turn := byHook[t.Delivery.WebhookID]
			if turn == nil {
				return fmt.Errorf("take turns: no turn row for webhook %s", t.Delivery.WebhookID)
			}
			v := decideTurn(t, turn, others, unprepared, force, ts0)
			if v.Verdict == TurnSuperseded {
				supersede = append(supersede, superseding{ids: []string{t.Delivery.ID}, by: v.SupersededBy})
			}
			if v.Verdict == TurnGo {
				until := ts0.Add(lease)
				turn.Holder, turn.LeaseUntil, turn.SentSequence = t.Delivery.ID, &until, max(turn.SentSequence, seq)
				if err := tx.Model(&DeliveryTurn{}).Where("webhook_id = ? AND asset_id = ?", turn.WebhookID, asset).
					Updates(map[string]any{"holder": turn.Holder, "lease_until": until, "sent_sequence": turn.SentSequence}).Error; err != nil {
					return err
				}
				if t.Webhook.DeliveryMode != DeliveryAll && !force {
					if older := olderPending(others, t); len(older) > 0 {
						supersede = append(supersede, superseding{ids: older, by: seq})
					}
				}
			}
			if v.Verdict == TurnWait && !v.InFlight {
				// The reconciler need not look at it before then.
				if err := tx.Model(&Delivery{}).Where("id = ? AND state = ?", t.Delivery.ID, DeliveryPending).
					Update("next_attempt_at", ts0.Add(v.Wait)).Error; err != nil {
					return err
				}
			}
			out[i] = v
		}
		for _, s := range supersede {
			if err := tx.Model(&Delivery{}).Where("id IN ? AND state = ?", s.ids, DeliveryPending).Updates(map[string]any{
				"state": DeliverySuperseded, "superseded_by": s.by, "next_attempt_at": nil, "updated_at": ts0,
			}).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("take turns of event %s: %w", ts[0].Delivery.EventID, translate(err, "Delivery"))
	}
	return out, nil
}

// superseding is a set of deliveries a newer sequence supersedes.
type superseding struct {
	ids []string
	by  int64
}

// decideTurn applies TakeTurns' rules to one delivery.
func decideTurn(t *DeliveryTarget, turn *DeliveryTurn, others []turnOther, unprepared, force bool, at time.Time) Turn {
	d, seq := t.Delivery, t.Sequence
	pending := false
	var newest int64
	var olderDue *time.Time
	olderPending := false
	for _, o := range others {
		if o.WebhookID != d.WebhookID {
			continue
		}
		switch {
		case o.ID == d.ID:
			pending = o.State == DeliveryPending
		case o.Sequence > seq:
			newest = max(newest, o.Sequence)
		case o.Sequence < seq && o.State == DeliveryPending:
			olderPending = true
			if o.NextAttemptAt != nil && (olderDue == nil || o.NextAttemptAt.Before(*olderDue)) {
				olderDue = o.NextAttemptAt
			}
		}
	}
	if !pending {
		return Turn{Verdict: TurnSettled}
	}
	if !force {
		if turn.SentSequence > seq {
			return Turn{Verdict: TurnSuperseded, SupersededBy: turn.SentSequence}
		}
		if t.Webhook.DeliveryMode != DeliveryAll && newest > 0 {
			return Turn{Verdict: TurnSuperseded, SupersededBy: newest}
		}
		if t.Webhook.DeliveryMode == DeliveryAll && (olderPending || unprepared) {
			var wait time.Duration
			if olderDue != nil {
				wait = max(olderDue.Sub(at), 0)
			}
			if turn.Holder != "" && turn.Holder != d.ID && turn.LeaseUntil != nil && turn.LeaseUntil.After(at) {
				return Turn{Verdict: TurnWait, Wait: turn.LeaseUntil.Sub(at), InFlight: true}
			}
			return Turn{Verdict: TurnWait, Wait: wait}
		}
	}
	if turn.Holder != "" && turn.Holder != d.ID && turn.LeaseUntil != nil && turn.LeaseUntil.After(at) {
		return Turn{Verdict: TurnWait, Wait: turn.LeaseUntil.Sub(at), InFlight: true}
	}
	return Turn{Verdict: TurnGo}
}

// olderPending lists the pending deliveries of t's (webhook, asset) with
// an older sequence than t's.
func olderPending(others []turnOther, t *DeliveryTarget) []string {
	var ids []string
	for _, o := range others {
		if o.WebhookID == t.Delivery.WebhookID && o.ID != t.Delivery.ID && o.Sequence < t.Sequence && o.State == DeliveryPending {
			ids = append(ids, o.ID)
		}
	}
	return ids
}

// releaseTurn gives back the turn of (webhook, asset) held by delivery.
func releaseTurn(tx *gorm.DB, webhookID, assetID, deliveryID string) error {
	return tx.Model(&DeliveryTurn{}).Where("webhook_id = ? AND asset_id = ? AND holder = ?", webhookID, assetID, deliveryID).
		Updates(map[string]any{"holder": "", "lease_until": nil}).Error
}

// staleForRedelivery reports whether a newer event of the delivery's
// asset was already sent to its webhook: a redelivery would send the
// receiver back in time (DESIGN §9).
func staleForRedelivery(tx *gorm.DB, d *Delivery) (bool, error) {
	var ev AssetEvent
	if err := tx.Select("kind", "asset_id", "sequence").Where("id = ?", d.EventID).Take(&ev).Error; err != nil {
		return false, err
	}
	if ev.Sequence == 0 {
		return false, nil
	}
	var turn DeliveryTurn
	err := tx.Where("webhook_id = ? AND asset_id = ?", d.WebhookID, ev.AssetID).Take(&turn).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return turn.SentSequence > ev.Sequence, nil
}
