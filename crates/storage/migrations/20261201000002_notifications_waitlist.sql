-- Notifications and the waitlist.

-- A member's notifications, stored so that they can be read later and pushed live. The outbox
-- relay writes them in the transaction that delivers the event they tell of; the id is derived from
-- that outbox event's id, so the primary key makes a redelivered event create nothing new.
CREATE TABLE notifications (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id),
    -- `booking.confirmed`, `waitlist.offer`, ...: a dotted lower-case name, so new kinds need no
    -- migration.
    kind       text NOT NULL CHECK (kind ~ '^[a-z][a-z_]*\.[a-z_]+$'),
    title      text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    body       text NOT NULL CHECK (length(body) <= 2000),
    -- What the notification is about (booking_id, facility_id, start, end, ...).
    data       jsonb NOT NULL CHECK (jsonb_typeof(data) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    read_at    timestamptz
);
CREATE INDEX notifications_user_idx ON notifications (user_id, created_at DESC, id DESC);
CREATE INDEX notifications_unread_idx ON notifications (user_id, created_at DESC, id DESC)
    WHERE read_at IS NULL;

-- A hold made for a waitlist offer: it does not count against the member's hold limit.
ALTER TABLE bookings ADD COLUMN waitlist_offer boolean NOT NULL DEFAULT false;

-- Members waiting for a taken range of a facility to free up.
CREATE TABLE waitlist_entries (
    id          uuid PRIMARY KEY,
    facility_id uuid NOT NULL REFERENCES facilities (id),
    user_id     uuid NOT NULL REFERENCES users (id),
    -- The wanted time, half-open [start, end), on the facility's grid when it was asked for.
    during      tstzrange NOT NULL CHECK (NOT isempty(during) AND lower_inc(during) AND NOT upper_inc(during)),
    -- waiting: in the queue; offered: holds `booking_id`, a hold in the member's name;
    -- fulfilled: the offer was confirmed; expired: the offer ran out or was cancelled (or the
    -- wanted time passed before anything freed).
    status      text NOT NULL CHECK (status IN ('waiting', 'offered', 'fulfilled', 'expired')),
    booking_id  uuid REFERENCES bookings (id),
    -- First come, first served: the queue is ordered by this, then by id.
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    offered_at  timestamptz,
    closed_at   timestamptz,
    CONSTRAINT waitlist_offer_has_booking CHECK (status IN ('waiting', 'expired') OR booking_id IS NOT NULL)
);
-- One open entry per member, facility and range: a second join is 409 `already_waiting`.
CREATE UNIQUE INDEX waitlist_one_per_member ON waitlist_entries (user_id, facility_id, during)
    WHERE status IN ('waiting', 'offered');
-- An offer hold belongs to one entry.
CREATE UNIQUE INDEX waitlist_booking_key ON waitlist_entries (booking_id) WHERE booking_id IS NOT NULL;
-- The relay's work list when a range frees: the waiting entries of a facility overlapping it.
CREATE INDEX waitlist_waiting_idx ON waitlist_entries USING gist (facility_id, during)
    WHERE status = 'waiting';
CREATE INDEX waitlist_user_idx ON waitlist_entries (user_id, created_at DESC);

-- An offered entry follows its hold, in the transaction that changes the hold, whichever path
-- changes it (a confirmation, a cancellation, the sweeper, a hold that expired a stale one): a
-- confirmed offer is fulfilled, a cancelled or expired one is expired. Passing the offer on is the
-- relay's work, on the outbox event of the same change.
CREATE FUNCTION bookings_waitlist() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE waitlist_entries
    SET status = CASE WHEN NEW.status = 'confirmed' THEN 'fulfilled' ELSE 'expired' END,
        closed_at = now()
    WHERE booking_id = NEW.id AND status = 'offered';
    RETURN NULL;
END;
$$;

CREATE TRIGGER bookings_waitlist AFTER UPDATE OF status ON bookings
    FOR EACH ROW WHEN (NEW.waitlist_offer AND OLD.status IS DISTINCT FROM NEW.status
        AND NEW.status IN ('confirmed', 'cancelled', 'expired'))
    EXECUTE FUNCTION bookings_waitlist();

-- The outbox payload also says whether a booking is a waitlist offer, so the relay can word its
-- notifications. Otherwise as in the outbox migration.
CREATE OR REPLACE FUNCTION bookings_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
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
        'class_id', NEW.class_id,
        'waitlist_offer', NEW.waitlist_offer));
    PERFORM pg_notify('clubpulse_outbox', '');
    RETURN NULL;
END;
$$;

-- hold_slot as before, except that waitlist offers do not count against the hold limit: an offer
-- is given, not asked for.
CREATE OR REPLACE FUNCTION hold_slot(
    p_id uuid,
    p_facility uuid,
    p_user uuid,
    p_start timestamptz,
    p_end timestamptz,
    p_buffer_minutes integer,
    p_hold_seconds double precision,
    p_price_cents bigint,
    p_currency text,
    p_series uuid,
    p_max_active bigint
) RETURNS SETOF bookings
LANGUAGE plpgsql AS $$
DECLARE
    active bigint;
BEGIN
    PERFORM 1 FROM users WHERE id = p_user FOR UPDATE;
    SELECT count(DISTINCT coalesce(series_id, id)) INTO active
    FROM bookings
    WHERE user_id = p_user AND status = 'held' AND hold_expires_at > now() AND NOT waitlist_offer
      AND (p_series IS NULL OR series_id IS DISTINCT FROM p_series);
    IF active >= p_max_active THEN
        RAISE EXCEPTION 'the member already has % active holds', active USING ERRCODE = 'CP001';
    END IF;
    RETURN QUERY
        WITH expired AS (
            UPDATE bookings SET status = 'expired', expired_at = now()
            WHERE facility_id = p_facility AND status = 'held' AND hold_expires_at <= now()
              AND blocks && tstzrange(p_start, p_end + make_interval(mins => p_buffer_minutes), '[)')
            RETURNING *
        )
        SELECT * FROM expired;
    RETURN QUERY
        INSERT INTO bookings (id, facility_id, user_id, status, during, blocks, hold_expires_at,
            price_cents, currency, series_id)
        VALUES (p_id, p_facility, p_user, 'held', tstzrange(p_start, p_end, '[)'),
            tstzrange(p_start, p_end + make_interval(mins => p_buffer_minutes), '[)'),
            now() + make_interval(secs => p_hold_seconds), p_price_cents, p_currency, p_series)
        RETURNING *;
END;
$$;
