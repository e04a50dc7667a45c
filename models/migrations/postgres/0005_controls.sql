-- Webhook controls (DESIGN §10).
--
-- Filters: JSON lists of canonical statuses and asset types; '[]' = all.
ALTER TABLE webhooks ADD COLUMN statuses text NOT NULL DEFAULT '[]';
ALTER TABLE webhooks ADD COLUMN asset_types text NOT NULL DEFAULT '[]';
-- The asset type of an event (video, livestream, or '' when unknown), for
-- the asset_types filter.
ALTER TABLE asset_events ADD COLUMN asset_type text NOT NULL DEFAULT '';

-- Secret rotation: the secret replaced by rotate-secret/ keeps signing
-- (as a second signature) until previous_secret_expires_at.
ALTER TABLE webhooks ADD COLUMN previous_secret_token text NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN previous_secret_expires_at timestamptz;

-- Bulk recovery: one row per recover/ request, and one item per failed
-- delivery it redelivers. planned is set once the items are listed.
CREATE TABLE recoveries (
    id               text PRIMARY KEY,
    organization_id  text NOT NULL REFERENCES organizations (id),
    webhook_id       text NOT NULL REFERENCES webhooks (id),
    since            timestamptz NOT NULL,
    until            timestamptz,
    workflow_id      text NOT NULL,
    state            text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'completed')),
    planned          boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX recoveries_webhook_idx ON recoveries (webhook_id, created_at);

-- An item is planned, then redelivered (its delivery reopened and driven
-- by a Redeliver workflow), then succeeded or failed; skipped when it
-- could not be reopened (a newer event was sent meanwhile, or someone
-- redelivered it by hand first).
CREATE TABLE recovery_items (
    recovery_id  text NOT NULL REFERENCES recoveries (id),
    delivery_id  text NOT NULL REFERENCES deliveries (id),
    state        text NOT NULL DEFAULT 'planned' CHECK (state IN ('planned', 'redelivered', 'succeeded', 'failed', 'skipped')),
    PRIMARY KEY (recovery_id, delivery_id)
);
CREATE INDEX recovery_items_delivery_idx ON recovery_items (delivery_id);

-- Retention scans events by age.
CREATE INDEX asset_events_received_idx ON asset_events (received_at);

-- Retention deletes old events, but an asset's sequence must keep growing
-- (DESIGN §9): the highest sequence of the deleted events of an asset is
-- kept here, and a new event takes max(its stored events, this) + 1.
CREATE TABLE asset_sequences (
    organization_id  text NOT NULL,
    asset_id         text NOT NULL,
    last_sequence    bigint NOT NULL,
    PRIMARY KEY (organization_id, asset_id)
);
