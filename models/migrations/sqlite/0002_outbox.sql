-- The outbox (issue 11): an event whose workflow start failed is retried
-- with a per-row backoff, so one event that cannot be started never blocks
-- the ones behind it. next_start_at is when the dispatcher may try next.
ALTER TABLE asset_events ADD COLUMN start_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE asset_events ADD COLUMN next_start_at datetime;
ALTER TABLE asset_events ADD COLUMN last_start_error text NOT NULL DEFAULT '';
-- When the event's deliveries were created (snapshot of its webhooks). A
-- started event without it, whose workflow is gone, is resumed by the
-- reconciler.
ALTER TABLE asset_events ADD COLUMN prepared_at datetime;
UPDATE asset_events SET next_start_at = received_at WHERE workflow_started_at IS NULL;
UPDATE asset_events SET prepared_at = received_at
    WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = asset_events.id) OR kind = 'ping';
DROP INDEX asset_events_unstarted_idx;
CREATE INDEX asset_events_outbox_idx ON asset_events (next_start_at) WHERE workflow_started_at IS NULL;
CREATE INDEX asset_events_unprepared_idx ON asset_events (workflow_started_at) WHERE prepared_at IS NULL AND workflow_started_at IS NOT NULL;
-- The reconciler looks for pending deliveries whose next attempt is overdue.
CREATE INDEX deliveries_overdue_idx ON deliveries (next_attempt_at) WHERE state = 'pending';
