-- Ordering (DESIGN §9): every accepted asset event gets a sequence per
-- (organization, asset), from 1, strictly increasing in acceptance order.
-- asset_sequences holds the last one given; events stored before this
-- migration are numbered in the order they were received.
ALTER TABLE asset_events ADD COLUMN sequence bigint NOT NULL DEFAULT 0;
CREATE TABLE asset_sequences (
    organization_id text NOT NULL,
    asset_id text NOT NULL,
    last_sequence bigint NOT NULL,
    PRIMARY KEY (organization_id, asset_id)
);
UPDATE asset_events SET sequence = (
    SELECT count(*) FROM asset_events e
    WHERE e.organization_id = asset_events.organization_id AND e.asset_id = asset_events.asset_id AND e.kind = 'asset'
      AND (e.received_at < asset_events.received_at OR (e.received_at = asset_events.received_at AND e.id <= asset_events.id))
) WHERE kind = 'asset';
INSERT INTO asset_sequences (organization_id, asset_id, last_sequence)
    SELECT organization_id, asset_id, max(sequence) FROM asset_events WHERE kind = 'asset' GROUP BY organization_id, asset_id;
