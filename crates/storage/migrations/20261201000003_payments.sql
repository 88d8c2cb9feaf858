-- Payments: what a member paid for a booking, through which provider, and what was refunded.
--
-- A payment is a row with a state machine, one row per provider reference:
--   pending   → succeeded | failed   (the provider's verdict, by webhook or reconciliation)
--   failed    → succeeded            (the member tried another card on the same intent)
--   succeeded → refunded             (all or part of it given back; `refunded_cents` says how much)
-- Nothing moves a payment back: a `payment_failed` arriving after `succeeded` changes nothing,
-- which is what makes applying provider events in any order safe.
CREATE TABLE payments (
    id              uuid PRIMARY KEY,
    booking_id      uuid NOT NULL REFERENCES bookings (id),
    -- The member who pays (the booking's owner), so listings need no join.
    user_id         uuid NOT NULL REFERENCES users (id),
    provider        text NOT NULL CHECK (provider IN ('onsite', 'stripe')),
    -- The provider's id for it: a Stripe PaymentIntent (`pi_…`), or the payment's own for on site.
    provider_ref    text NOT NULL,
    -- What Stripe.js needs to confirm the intent in the member's browser; none on site.
    client_secret   text,
    status          text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'refunded')),
    amount_cents    bigint NOT NULL CHECK (amount_cents > 0),
    currency        text NOT NULL,
    refunded_cents  bigint NOT NULL DEFAULT 0,
    -- Why the last refund was made (`slot_taken`, `cancelled`, `duplicate`), for the member's notice.
    refund_reason   text,
    failure_message text,
    -- Staff who took an on-site payment; NULL for the provider's.
    recorded_by     uuid REFERENCES users (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    succeeded_at    timestamptz,
    CONSTRAINT payments_provider_ref_key UNIQUE (provider, provider_ref),
    CONSTRAINT payments_refund_within_amount CHECK (refunded_cents BETWEEN 0 AND amount_cents),
    CONSTRAINT payments_refunded_has_refund CHECK (status <> 'refunded' OR refunded_cents > 0)
);
-- "Asking again returns the same pending payment": at most one pending payment per booking, so two
-- checkouts racing each other end with one row (the loser reads the winner's).
CREATE UNIQUE INDEX payments_one_pending_per_booking ON payments (booking_id) WHERE status = 'pending';
CREATE INDEX payments_booking_idx ON payments (booking_id, created_at);
-- Reconciliation's work list.
CREATE INDEX payments_pending_idx ON payments (created_at) WHERE status = 'pending';

-- Refunds owed and made. A refund is decided in the transaction that makes it owed (a cancellation,
-- a late payment for a slot taken meanwhile) and carried out through the provider afterwards, with
-- its own id as the provider's idempotency key: a refund retried after a crash is made once.
CREATE TABLE payment_refunds (
    id           uuid PRIMARY KEY,
    payment_id   uuid NOT NULL REFERENCES payments (id),
    amount_cents bigint NOT NULL CHECK (amount_cents > 0),
    reason       text NOT NULL CHECK (reason IN ('slot_taken', 'cancelled', 'duplicate')),
    status       text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    -- The provider's refund id once made (`re_…`).
    provider_ref text,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
);
CREATE INDEX payment_refunds_pending_idx ON payment_refunds (created_at) WHERE status = 'pending';
CREATE INDEX payment_refunds_payment_idx ON payment_refunds (payment_id);

-- Provider events applied, by the provider's event id: an event is recorded in the same
-- transaction as its effect, so a repeat (the provider retries until it hears 2xx) finds its id
-- here and changes nothing.
CREATE TABLE payment_events (
    event_id    text PRIMARY KEY CHECK (length(event_id) BETWEEN 1 AND 255),
    provider    text NOT NULL,
    type        text NOT NULL,
    payment_id  uuid REFERENCES payments (id),
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Every status change of a payment, and every refund added to one, writes one outbox event in the
-- same transaction (`payment.pending`, `payment.succeeded`, `payment.failed`, `payment.refunded`),
-- as bookings do: the relay audits them, tells the member of refunds and fans them out to webhooks.
CREATE FUNCTION payments_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    topic text;
BEGIN
    IF TG_OP = 'INSERT' OR OLD.status <> NEW.status THEN
        topic := 'payment.' || NEW.status;
    ELSIF NEW.refunded_cents > OLD.refunded_cents THEN
        topic := 'payment.refunded';
    ELSE
        RETURN NULL;
    END IF;
    INSERT INTO outbox (topic, aggregate_id, actor_id, payload)
    VALUES (topic, NEW.id, NEW.recorded_by, jsonb_build_object(
        'payment_id', NEW.id,
        'booking_id', NEW.booking_id,
        'user_id', NEW.user_id,
        'provider', NEW.provider,
        'provider_ref', NEW.provider_ref,
        'status', NEW.status,
        'amount_cents', NEW.amount_cents,
        'refunded_cents', NEW.refunded_cents,
        'refund_reason', NEW.refund_reason,
        'currency', NEW.currency));
    PERFORM pg_notify('clubpulse_outbox', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER payments_outbox AFTER INSERT OR UPDATE OF status, refunded_cents ON payments
    FOR EACH ROW EXECUTE FUNCTION payments_outbox();
