-- The audit log: an append-only, hash-chained record of who did what.
--
-- Requests never write here. They append events to a buffer (a Redis stream, or `audit_inbox`
-- below when there is no Redis, or when Redis is briefly down) and a flusher moves them here in
-- batches, one transaction per batch, under a transaction-scoped advisory lock so that the chain
-- has exactly one writer at a time.
--
-- Each row's `hash` is SHA-256 over its `prev_hash` and a canonical encoding of the row's own
-- fields (seq included), so editing, deleting, reordering or inserting a row breaks the chain at
-- that row; `clubpulse audit verify` walks it and names the first broken seq.
CREATE TABLE audit_log (
    -- Dense from 1: a gap is a deleted row.
    seq         bigint PRIMARY KEY CHECK (seq > 0),
    -- Chosen by the instance that recorded the event. Unique, so a batch handed over twice (a
    -- flusher killed after its commit but before it removed the batch from the buffer) is
    -- recognised and skipped instead of chained again.
    event_id    uuid NOT NULL CONSTRAINT audit_log_event_id_key UNIQUE,
    occurred_at timestamptz NOT NULL,
    -- The account that acted, when one did (an unknown e-mail failing to log in has none).
    actor_id    uuid,
    action      text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.]{1,63}$'),
    -- What was acted on, as `kind:id` (e.g. `booking:…`, `user:…`).
    target      text,
    ip          text,
    details     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
    prev_hash   bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash        bytea NOT NULL CHECK (length(hash) = 32),
    recorded_at timestamptz NOT NULL DEFAULT now()
);
-- The admin listing filters by actor or action and pages by seq, newest first.
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, seq DESC);
CREATE INDEX audit_log_action_idx ON audit_log (action, seq DESC);
CREATE INDEX audit_log_occurred_idx ON audit_log (occurred_at);

-- The chain's head, anchored outside the chain: every flush appends the seq and hash it ended at.
-- Deleting the newest rows of `audit_log` leaves a chain that is intact by itself, so `verify`
-- also checks that the newest anchor is still in the chain. (Operators who keep the printed head
-- elsewhere, e.g. in their monitoring, can pass it to `verify --expect-head` as a third witness.)
CREATE TABLE audit_anchor (
    seq         bigint PRIMARY KEY,
    hash        bytea NOT NULL CHECK (length(hash) = 32),
    anchored_at timestamptz NOT NULL DEFAULT now()
);

-- The buffer used without Redis: durable, so an accepted event survives a crash. Rows are removed
-- by the flusher once their events are in the chain.
CREATE TABLE audit_inbox (
    id          bigserial PRIMARY KEY,
    event       jsonb NOT NULL
);

-- Append-only, whoever connects: the application's role (and any other without the privilege to
-- disable triggers) gets an error for UPDATE, DELETE or TRUNCATE of the chain or its anchors.
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_anchor_append_only
    BEFORE UPDATE OR DELETE ON audit_anchor
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_anchor_no_truncate
    BEFORE TRUNCATE ON audit_anchor
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log, audit_anchor FROM PUBLIC;
