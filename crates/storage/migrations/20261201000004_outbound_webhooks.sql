-- Outbound webhooks: endpoints that admins register, and one delivery per endpoint and event.
--
-- The outbox relay records deliveries in the transaction that delivers the outbox event, for every
-- enabled endpoint subscribed to the event's type, and queues one job per new delivery; the job
-- POSTs the event, signed, and records each attempt here.

CREATE TABLE webhook_endpoints (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Checked by the API (http or https, no userinfo, a host whose addresses are public); the
    -- database only keeps out what could never be a target.
    url           text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2048),
    -- The event types delivered here (`booking.held`, `payment.succeeded`, ...), deduplicated and
    -- sorted by the API; never empty, or the endpoint would receive nothing.
    events        text[] NOT NULL CHECK (cardinality(events) BETWEEN 1 AND 32),
    -- The HMAC key deliveries are signed with. Kept as it was shown to the admin, because every
    -- delivery signs with it: a hash would not do. It is never listed again.
    secret        text NOT NULL CHECK (length(secret) BETWEEN 16 AND 200),
    -- A disabled endpoint keeps its history but receives nothing; the service disables an
    -- endpoint that has been failing for too long.
    enabled       boolean NOT NULL DEFAULT true,
    -- The admin who registered it, who is told when it is disabled. NULL if that account is gone.
    created_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- The first failed attempt since the last successful one; NULL while deliveries succeed.
    failing_since timestamptz,
    disabled_at   timestamptz,
    CHECK (enabled = (disabled_at IS NULL))
);
-- The relay's question for every batch: which enabled endpoints want this type?
CREATE INDEX webhook_endpoints_events_idx ON webhook_endpoints USING gin (events) WHERE enabled;

CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Deleting an endpoint deletes its deliveries: nothing is sent to it any more, and its jobs
    -- find nothing to do.
    endpoint_id      uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- The webhook event's id: the outbox event's id (or one derived from it for a second event
    -- made from the same outbox event), the same at every attempt so receivers can drop repeats.
    event_id         uuid NOT NULL,
    event_type       text NOT NULL CHECK (event_type ~ '^[a-z][a-z_]*\.[a-z_]+$'),
    -- The event's `data` and `created`, kept so that every attempt sends the same body.
    payload          jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    event_created_at timestamptz NOT NULL,
    -- pending: not attempted yet (or not sent: the endpoint is disabled); failed: the last attempt
    -- failed and the queue retries it; succeeded: a 2xx answer; dead: no attempt is left.
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'succeeded', 'failed', 'dead')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- The last attempt's HTTP status (NULL when no answer came) and error, for the admin.
    last_status      integer,
    last_error       text CHECK (length(last_error) <= 1000),
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_attempt_at  timestamptz,
    -- When it succeeded or died.
    completed_at     timestamptz,
    -- One delivery per endpoint and event: the relay inserts with ON CONFLICT DO NOTHING, so a
    -- redelivered outbox batch records (and queues) nothing new.
    CONSTRAINT webhook_deliveries_endpoint_event_key UNIQUE (endpoint_id, event_id)
);
-- An endpoint's deliveries, newest first.
CREATE INDEX webhook_deliveries_endpoint_idx
    ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);
