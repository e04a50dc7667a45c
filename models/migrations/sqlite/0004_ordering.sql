-- Ordering and freshness per (webhook, asset) (DESIGN §9).
--
-- superseded: a final state, for a delivery a newer event of its asset
-- replaced before it succeeded. SQLite cannot alter a CHECK constraint;
-- its documented way for a change that leaves the stored rows valid is
-- to edit the table's definition in sqlite_schema. The CREATE TABLE
-- below then changes the schema version, so every open connection
-- reloads the schema.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema SET sql = replace(sql, '''pending'', ''succeeded'', ''failed'', ''cancelled'')', '''pending'', ''succeeded'', ''failed'', ''cancelled'', ''superseded'')')
WHERE type = 'table' AND name = 'deliveries';
PRAGMA writable_schema = RESET;

-- delivery_mode: "latest" supersedes an older undelivered state of an
-- asset by a newer one; "all" delivers every state, in sequence order.
ALTER TABLE webhooks ADD COLUMN delivery_mode text NOT NULL DEFAULT 'latest';
-- superseded_by is the sequence of the event that superseded a delivery.
ALTER TABLE deliveries ADD COLUMN superseded_by bigint NOT NULL DEFAULT 0;

-- The turn of one (webhook, asset): at most one attempt in flight
-- (holder, until lease_until, after which a crashed worker's attempt is
-- presumed over), and the highest sequence ever sent (sent_sequence),
-- below which nothing is sent again.
CREATE TABLE delivery_turns (
    webhook_id     text NOT NULL REFERENCES webhooks (id),
    asset_id       text NOT NULL,
    sent_sequence  bigint NOT NULL DEFAULT 0,
    holder         text NOT NULL DEFAULT '',
    lease_until    datetime,
    PRIMARY KEY (webhook_id, asset_id)
);
