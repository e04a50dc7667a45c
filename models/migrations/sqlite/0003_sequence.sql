-- Ordering (DESIGN §9): every accepted asset event gets a sequence per
-- (organization, asset), from 1, strictly increasing in acceptance order.
-- An event's insert takes the asset's highest number + 1; the unique
-- index makes two concurrent inserts of one asset that read the same
-- highest number collide, and the second retries. Events stored before
-- this migration are numbered in the order they were received; pings
-- keep 0.
ALTER TABLE asset_events ADD COLUMN sequence bigint NOT NULL DEFAULT 0;
UPDATE asset_events SET sequence = (
    SELECT count(*) FROM asset_events e
    WHERE e.organization_id = asset_events.organization_id AND e.asset_id = asset_events.asset_id AND e.kind = 'asset'
      AND (e.received_at < asset_events.received_at OR (e.received_at = asset_events.received_at AND e.id <= asset_events.id))
) WHERE kind = 'asset';
CREATE UNIQUE INDEX asset_events_sequence_idx ON asset_events (organization_id, asset_id, sequence) WHERE kind = 'asset';
