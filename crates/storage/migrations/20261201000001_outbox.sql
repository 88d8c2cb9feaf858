-- The transactional outbox: what must follow a committed write (an audit event, an e-mail, a cache
-- invalidation, a published event) is recorded in the same transaction as the write, and a relay
-- delivers it afterwards, at least once. A crash between the commit and the side effect then loses
-- nothing: the row is still here, and the next relay delivers it.
--
-- Rows are removed once delivered, so the table holds only what is still owed.
CREATE TABLE outbox (
    -- Delivery order. Two events of one booking are written by transactions that serialise on the
    -- booking's row lock, so the later event always has the larger seq: order per booking holds.
    seq          bigserial PRIMARY KEY,
    -- Fixed when the event is written, so every delivery of it carries the same id and a consumer
    -- (the audit chain, say) recognises a repeat.
    event_id     uuid NOT NULL DEFAULT gen_random_uuid() CONSTRAINT outbox_event_id_key UNIQUE,
    -- What happened, e.g. `booking.held`.
    topic        text NOT NULL CHECK (topic ~ '^[a-z][a-z0-9_.]{1,63}$'),
    -- What it happened to (a booking's id for booking events).
    aggregate_id uuid NOT NULL,
    -- Who caused it; NULL for the system (a hold expiring by itself).
    actor_id     uuid,
    payload      jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Who last changed a booking's status, for its event's actor. NULL with a status change means the
-- system (expiry); a new row's actor is its member.
ALTER TABLE bookings ADD COLUMN changed_by uuid;

-- Every status change of a booking, whichever statement makes it (a hold, a confirmation, a
-- cancellation, the sweeper, a class), writes exactly one outbox event in the same transaction.
-- A trigger rather than application code, so no path can forget it. The notification wakes the
-- relays at commit (PostgreSQL folds repeats within a transaction into one); polling is the
-- safety net for a relay that was not listening.
CREATE FUNCTION bookings_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    actor uuid;
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status = NEW.status THEN
        RETURN NULL;
    END IF;
    actor := CASE
        WHEN NEW.status = 'expired' THEN NULL
        WHEN TG_OP = 'INSERT' THEN coalesce(NEW.changed_by, NEW.user_id)
        ELSE NEW.changed_by
    END;
    INSERT INTO outbox (topic, aggregate_id, actor_id, payload)
    VALUES ('booking.' || NEW.status, NEW.id, actor, jsonb_build_object(
        'booking_id', NEW.id,
        'facility_id', NEW.facility_id,
        'user_id', NEW.user_id,
        'status', NEW.status,
        'start', lower(NEW.during),
        'end', upper(NEW.during),
        'blocks_until', upper(NEW.blocks),
        'hold_expires_at', NEW.hold_expires_at,
        'price_cents', NEW.price_cents,
        'currency', NEW.currency,
        'cancellation_fee_cents', NEW.cancellation_fee_cents,
        'series_id', NEW.series_id,
        'class_id', NEW.class_id));
    PERFORM pg_notify('clubpulse_outbox', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER bookings_outbox AFTER INSERT OR UPDATE OF status ON bookings
    FOR EACH ROW EXECUTE FUNCTION bookings_outbox();

-- Booking e-mails already sent, by their message key (`booking-<id>-confirmed`): the outbox relay
-- may queue a booking's mail again after a crash, and the handler then sees it went out already.
-- A worker killed between the send and this row sends it once more, with the same Message-ID.
CREATE TABLE mail_sent (
    message_key text PRIMARY KEY,
    sent_at     timestamptz NOT NULL DEFAULT now()
);
