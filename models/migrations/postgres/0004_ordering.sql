-- Ordering and freshness per (webhook, asset) (DESIGN §9).
--
-- delivery_mode: "latest" supersedes an older undelivered state of an
-- asset by a newer one; "all" delivers every state, in sequence order.
ALTER TABLE webhooks ADD COLUMN delivery_mode text NOT NULL DEFAULT 'latest';

-- superseded: a final state, for a delivery a newer event of its asset
-- replaced before it succeeded; superseded_by is that event's sequence.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_state_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_state_check CHECK (state IN ('pending', 'succeeded', 'failed', 'cancelled', 'superseded'));
ALTER TABLE deliveries ADD COLUMN superseded_by bigint NOT NULL DEFAULT 0;

-- The turn of one (webhook, asset): at most one attempt in flight
-- (holder, until lease_until, after which a crashed worker's attempt is
-- presumed over), and the highest sequence ever sent (sent_sequence),
-- below which nothing is sent again. Rows are taken FOR UPDATE in
-- webhook id order, so two events of one asset never deadlock.
CREATE TABLE delivery_turns (
    webhook_id     text NOT NULL REFERENCES webhooks (id),
    asset_id       text NOT NULL,
    sent_sequence  bigint NOT NULL DEFAULT 0,
    holder         text NOT NULL DEFAULT '',
    lease_until    timestamptz,
    PRIMARY KEY (webhook_id, asset_id)
);
