-- Rollups for the manager's dashboard, kept by triggers in the transaction of every change they
-- sum, so they are never stale and never need a job.
--
-- Read raw, a year of a busy club is hundreds of thousands of bookings, each cut into local hours
-- and joined to its payments: far over the dashboard's 100 ms. Summed per club and local date (and
-- hour), the same year is a few thousand rows per club. Only terminal changes touch the rollups
-- (a booking confirmed, cancelled or expired, a payment settled or refunded): a new hold, the hot
-- path, writes nothing here. Each change adds to its club's row of one day (and of the hours it
-- covers), in date and hour order, so two changes of one club and day wait for each other briefly
-- instead of deadlocking.
--
-- The local date and hour are those of the club's time zone at the time of the change; clubs do
-- not change zone, and bookings do not move between facilities or times.

-- Confirmed minutes per club, local date and local hour: a booking is cut at its club's local
-- hours (`date_trunc` in the zone, then whole hours of elapsed time), so the repeated hour of an
-- autumn change holds both of its passes.
CREATE TABLE stats_booked_minutes (
    club_id    uuid NOT NULL REFERENCES clubs (id),
    local_date date NOT NULL,
    local_hour smallint NOT NULL CHECK (local_hour BETWEEN 0 AND 23),
    minutes    bigint NOT NULL,
    PRIMARY KEY (club_id, local_date, local_hour)
);

-- Per club, local date of the booking's start, and currency: what became of its bookings, and
-- the money of their payments (whenever paid or refunded, counted on the booking's date).
CREATE TABLE stats_booking_days (
    club_id            uuid NOT NULL REFERENCES clubs (id),
    local_date         date NOT NULL,
    currency           text NOT NULL,
    confirmed          bigint NOT NULL DEFAULT 0,
    cancelled          bigint NOT NULL DEFAULT 0,
    -- Cancellations that carried a fee (later than the club's free window).
    late_cancellations bigint NOT NULL DEFAULT 0,
    expired            bigint NOT NULL DEFAULT 0,
    fees_cents         bigint NOT NULL DEFAULT 0,
    paid_cents         bigint NOT NULL DEFAULT 0,
    refunded_cents     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (club_id, local_date, currency)
);
-- "Every club" reads by date across clubs.
CREATE INDEX stats_booking_days_date_idx ON stats_booking_days (local_date);
CREATE INDEX stats_booked_minutes_date_idx ON stats_booked_minutes (local_date);

-- A range cut at the local hours of a zone: each piece's local date, hour and minutes.
CREATE FUNCTION stats_hour_pieces(p_during tstzrange, p_zone text)
RETURNS TABLE (local_date date, local_hour smallint, minutes bigint)
LANGUAGE sql STABLE AS $$
    SELECT (h AT TIME ZONE p_zone)::date,
           extract(hour FROM h AT TIME ZONE p_zone)::smallint,
           (sum(extract(epoch FROM least(upper(p_during), h + interval '1 hour')
                                   - greatest(lower(p_during), h))) / 60)::bigint
    FROM generate_series(date_trunc('hour', lower(p_during), p_zone),
                         upper(p_during) - interval '1 microsecond', interval '1 hour') AS h
    GROUP BY 1, 2
$$;

-- Adds one booking (sign 1) or takes it away (sign -1) from the rollups, by its status.
CREATE FUNCTION stats_apply_booking(b bookings, p_sign integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    club uuid;
    zone text;
BEGIN
    IF b.status NOT IN ('confirmed', 'cancelled', 'expired') THEN
        RETURN;
    END IF;
    SELECT c.id, c.timezone INTO club, zone
    FROM facilities f JOIN clubs c ON c.id = f.club_id
    WHERE f.id = b.facility_id;
    INSERT INTO stats_booking_days AS d (club_id, local_date, currency, confirmed, cancelled,
                                         late_cancellations, expired, fees_cents)
    VALUES (club, (lower(b.during) AT TIME ZONE zone)::date, b.currency,
            p_sign * (b.status = 'confirmed')::int,
            p_sign * (b.status = 'cancelled')::int,
            p_sign * (b.status = 'cancelled' AND b.cancellation_fee_cents IS NOT NULL)::int,
            p_sign * (b.status = 'expired')::int,
            p_sign * CASE WHEN b.status = 'cancelled' THEN coalesce(b.cancellation_fee_cents, 0) ELSE 0 END)
    ON CONFLICT (club_id, local_date, currency) DO UPDATE SET
        confirmed = d.confirmed + EXCLUDED.confirmed,
        cancelled = d.cancelled + EXCLUDED.cancelled,
        late_cancellations = d.late_cancellations + EXCLUDED.late_cancellations,
        expired = d.expired + EXCLUDED.expired,
        fees_cents = d.fees_cents + EXCLUDED.fees_cents;
    IF b.status = 'confirmed' THEN
        INSERT INTO stats_booked_minutes AS m (club_id, local_date, local_hour, minutes)
        SELECT club, p.local_date, p.local_hour, p_sign * p.minutes
        FROM stats_hour_pieces(b.during, zone) AS p
        ORDER BY p.local_date, p.local_hour
        ON CONFLICT (club_id, local_date, local_hour) DO UPDATE SET minutes = m.minutes + EXCLUDED.minutes;
    END IF;
END;
$$;

CREATE FUNCTION bookings_stats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM stats_apply_booking(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM stats_apply_booking(NEW, 1);
    END IF;
    RETURN NULL;
END;
$$;

-- A hold (the hot path) fires none of these: the WHEN clauses leave it out.
CREATE TRIGGER bookings_stats_insert AFTER INSERT ON bookings
    FOR EACH ROW WHEN (NEW.status IN ('confirmed', 'cancelled', 'expired'))
    EXECUTE FUNCTION bookings_stats();
CREATE TRIGGER bookings_stats_update AFTER UPDATE OF status, during, facility_id, cancellation_fee_cents, currency
    ON bookings FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.during IS DISTINCT FROM NEW.during
          OR OLD.facility_id IS DISTINCT FROM NEW.facility_id
          OR OLD.cancellation_fee_cents IS DISTINCT FROM NEW.cancellation_fee_cents
          OR OLD.currency IS DISTINCT FROM NEW.currency)
    EXECUTE FUNCTION bookings_stats();
CREATE TRIGGER bookings_stats_delete AFTER DELETE ON bookings
    FOR EACH ROW WHEN (OLD.status IN ('confirmed', 'cancelled', 'expired'))
    EXECUTE FUNCTION bookings_stats();

-- A payment's money, on its booking's club and date: paid while succeeded or refunded, and what
-- was refunded. Payments are never deleted.
CREATE FUNCTION payments_stats() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    paid bigint := CASE WHEN NEW.status IN ('succeeded', 'refunded') THEN NEW.amount_cents ELSE 0 END;
    refunded bigint := NEW.refunded_cents;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        paid := paid - CASE WHEN OLD.status IN ('succeeded', 'refunded') THEN OLD.amount_cents ELSE 0 END;
        refunded := refunded - OLD.refunded_cents;
    END IF;
    IF paid = 0 AND refunded = 0 THEN
        RETURN NULL;
    END IF;
    INSERT INTO stats_booking_days AS d (club_id, local_date, currency, paid_cents, refunded_cents)
    SELECT c.id, (lower(b.during) AT TIME ZONE c.timezone)::date, NEW.currency, paid, refunded
    FROM bookings b JOIN facilities f ON f.id = b.facility_id JOIN clubs c ON c.id = f.club_id
    WHERE b.id = NEW.booking_id
    ON CONFLICT (club_id, local_date, currency) DO UPDATE SET
        paid_cents = d.paid_cents + EXCLUDED.paid_cents,
        refunded_cents = d.refunded_cents + EXCLUDED.refunded_cents;
    RETURN NULL;
END;
$$;

CREATE TRIGGER payments_stats AFTER INSERT OR UPDATE OF status, refunded_cents, amount_cents ON payments
    FOR EACH ROW EXECUTE FUNCTION payments_stats();

-- Rebuilds both rollups from the bookings and payments: here, for the rows that exist already,
-- and after a bulk load that bypassed the triggers (the benchmark's generated history).
CREATE FUNCTION stats_rebuild() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM stats_booked_minutes;
    DELETE FROM stats_booking_days;
    INSERT INTO stats_booked_minutes (club_id, local_date, local_hour, minutes)
    SELECT c.id, p.local_date, p.local_hour, sum(p.minutes)
    FROM bookings b
    JOIN facilities f ON f.id = b.facility_id
    JOIN clubs c ON c.id = f.club_id
    CROSS JOIN LATERAL stats_hour_pieces(b.during, c.timezone) AS p
    WHERE b.status = 'confirmed'
    GROUP BY 1, 2, 3;
    INSERT INTO stats_booking_days (club_id, local_date, currency, confirmed, cancelled,
                                    late_cancellations, expired, fees_cents)
    SELECT c.id, (lower(b.during) AT TIME ZONE c.timezone)::date, b.currency,
           count(*) FILTER (WHERE b.status = 'confirmed'),
           count(*) FILTER (WHERE b.status = 'cancelled'),
           count(*) FILTER (WHERE b.status = 'cancelled' AND b.cancellation_fee_cents IS NOT NULL),
           count(*) FILTER (WHERE b.status = 'expired'),
           coalesce(sum(b.cancellation_fee_cents) FILTER (WHERE b.status = 'cancelled'), 0)
    FROM bookings b
    JOIN facilities f ON f.id = b.facility_id
    JOIN clubs c ON c.id = f.club_id
    WHERE b.status IN ('confirmed', 'cancelled', 'expired')
    GROUP BY 1, 2, 3;
    INSERT INTO stats_booking_days AS d (club_id, local_date, currency, paid_cents, refunded_cents)
    SELECT c.id, (lower(b.during) AT TIME ZONE c.timezone)::date, p.currency,
           coalesce(sum(p.amount_cents) FILTER (WHERE p.status IN ('succeeded', 'refunded')), 0),
           sum(p.refunded_cents)
    FROM payments p
    JOIN bookings b ON b.id = p.booking_id
    JOIN facilities f ON f.id = b.facility_id
    JOIN clubs c ON c.id = f.club_id
    GROUP BY 1, 2, 3
    ON CONFLICT (club_id, local_date, currency) DO UPDATE SET
        paid_cents = EXCLUDED.paid_cents,
        refunded_cents = EXCLUDED.refunded_cents;
END;
$$;

SELECT stats_rebuild();
