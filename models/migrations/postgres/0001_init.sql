-- Organizations own webhooks and customer tokens. The id is the slug used in
-- the API path (/api/v1/<id>/).
CREATE TABLE organizations (
    id          text PRIMARY KEY,
    name        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL
);

-- API tokens are stored as SHA-256 hashes; the clear token is shown once.
-- Customer tokens belong to one organization, service tokens to none.
CREATE TABLE api_tokens (
    id               bigserial PRIMARY KEY,
    token_hash       text NOT NULL UNIQUE,
    prefix           text NOT NULL,
    scope            text NOT NULL CHECK (scope IN ('customer', 'service')),
    organization_id  text REFERENCES organizations (id),
    created_at       timestamptz NOT NULL,
    revoked_at       timestamptz,
    CHECK ((scope = 'customer') = (organization_id IS NOT NULL))
);

-- Webhooks are soft-deleted so that deliveries and attempts keep their
-- parent; a deleted webhook's secret is erased.
CREATE TABLE webhooks (
    id                  text PRIMARY KEY,
    organization_id     text NOT NULL REFERENCES organizations (id),
    url                 text NOT NULL,
    secret_token        text NOT NULL,
    is_active           boolean NOT NULL DEFAULT true,
    deactivated_reason  text NOT NULL DEFAULT '',
    -- Start of the current run of failed attempts (NULL after a success);
    -- drives auto-disable.
    failing_since       timestamptz,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    deleted_at          timestamptz
);
CREATE INDEX webhooks_org_created_idx ON webhooks (organization_id, created_at, id) WHERE deleted_at IS NULL;

-- One row per asset status change signalled by a platform service. The asset
-- JSON is kept as bytes (not jsonb) so it is delivered exactly as received.
CREATE TABLE asset_events (
    id                   text PRIMARY KEY,
    organization_id      text NOT NULL REFERENCES organizations (id),
    kind                 text NOT NULL DEFAULT 'asset' CHECK (kind IN ('asset', 'ping')),
    asset_id             text NOT NULL,
    asset_status         text NOT NULL DEFAULT '',
    payload              bytea NOT NULL,
    received_at          timestamptz NOT NULL,
    workflow_id          text NOT NULL,
    workflow_started_at  timestamptz
);
CREATE INDEX asset_events_org_asset_idx ON asset_events (organization_id, asset_id);
CREATE INDEX asset_events_unstarted_idx ON asset_events (received_at) WHERE workflow_started_at IS NULL;

-- One delivery per (event, webhook). Its id is the webhook-id header value,
-- identical on every attempt.
CREATE TABLE deliveries (
    id               text PRIMARY KEY,
    event_id         text NOT NULL REFERENCES asset_events (id),
    webhook_id       text NOT NULL REFERENCES webhooks (id),
    organization_id  text NOT NULL REFERENCES organizations (id),
    state            text NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed', 'cancelled')),
    attempt_count    integer NOT NULL DEFAULT 0,
    last_status      integer NOT NULL DEFAULT 0,
    last_error_class text NOT NULL DEFAULT '',
    next_attempt_at  timestamptz,
    -- The workflow run that currently drives the delivery (the event's, or
    -- a manual redelivery's).
    workflow_id      text NOT NULL DEFAULT '',
    run_id           text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    UNIQUE (event_id, webhook_id)
);
CREATE INDEX deliveries_webhook_created_idx ON deliveries (webhook_id, created_at DESC);
CREATE INDEX deliveries_pending_idx ON deliveries (webhook_id) WHERE state = 'pending';

-- Every attempt is a row: the audit trail of what was sent and answered.
CREATE TABLE delivery_attempts (
    id                bigserial PRIMARY KEY,
    delivery_id       text NOT NULL REFERENCES deliveries (id),
    attempt_number    integer NOT NULL,
    manual            boolean NOT NULL DEFAULT false,
    request_url       text NOT NULL,
    request_headers   text NOT NULL,
    response_status   integer NOT NULL DEFAULT 0,
    response_headers  text NOT NULL DEFAULT '',
    response_body     bytea,
    error_class       text NOT NULL DEFAULT '',
    error_message     text NOT NULL DEFAULT '',
    duration_ms       bigint NOT NULL DEFAULT 0,
    started_at        timestamptz NOT NULL,
    finished_at       timestamptz NOT NULL,
    UNIQUE (delivery_id, attempt_number)
);
