-- The booking engine: holds and bookings that can never overlap, classes with a capacity.

-- A club's cancellation policy: cancelling at least `free_cancellation_minutes` before the start is
-- free; a later cancellation records a fee of `late_cancellation_fee_percent` of the price.
ALTER TABLE clubs
    ADD COLUMN free_cancellation_minutes integer NOT NULL DEFAULT 1440
        CHECK (free_cancellation_minutes BETWEEN 0 AND 43200),
    ADD COLUMN late_cancellation_fee_percent integer NOT NULL DEFAULT 50
        CHECK (late_cancellation_fee_percent BETWEEN 0 AND 100);

CREATE TABLE classes (
    id          uuid PRIMARY KEY,
    facility_id uuid NOT NULL REFERENCES facilities (id),
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 480),
    during      tstzrange NOT NULL CHECK (NOT isempty(during) AND lower_inc(during) AND NOT upper_inc(during)),
    capacity    integer NOT NULL CHECK (capacity BETWEEN 1 AND 10000),
    -- Maintained by the enrolment statements in the same transaction as the enrolment rows; the
    -- check is the last line against overselling: no statement can push it past the capacity.
    spots_taken integer NOT NULL DEFAULT 0,
    created_by  uuid NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT classes_capacity_not_exceeded CHECK (spots_taken BETWEEN 0 AND capacity)
);
CREATE INDEX classes_facility_idx ON classes (facility_id, lower(during));

CREATE TABLE bookings (
    id              uuid PRIMARY KEY,
    facility_id     uuid NOT NULL REFERENCES facilities (id),
    user_id         uuid NOT NULL REFERENCES users (id),
    -- held: protects the slot until hold_expires_at while the member pays;
    -- confirmed: paid or taken on site; cancelled and expired: no longer block anyone.
    status          text NOT NULL CHECK (status IN ('held', 'confirmed', 'cancelled', 'expired')),
    -- The booked time, half-open [start, end).
    during          tstzrange NOT NULL CHECK (NOT isempty(during) AND lower_inc(during) AND NOT upper_inc(during)),
    -- The time the facility is blocked: the booking plus the facility's buffer (cleaning, changeover).
    -- This is what must not overlap, so a buffer keeps the next booking from starting too soon.
    blocks          tstzrange NOT NULL CHECK (blocks @> during),
    -- Every hold has an expiry; it stays recorded after the hold is confirmed, cancelled or expired.
    hold_expires_at timestamptz CONSTRAINT bookings_hold_has_expiry CHECK (status <> 'held' OR hold_expires_at IS NOT NULL),
    price_cents     bigint NOT NULL CHECK (price_cents >= 0),
    currency        text NOT NULL,
    -- Set when a cancellation came later than the club's policy allows for free.
    cancellation_fee_cents bigint CHECK (cancellation_fee_cents >= 0),
    -- Occurrences of one weekly series share it; a series counts as one hold against the hold limit.
    series_id       uuid,
    -- A class occupies its facility through a confirmed booking of the staff member who made it.
    class_id        uuid REFERENCES classes (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    confirmed_at    timestamptz,
    cancelled_at    timestamptz,
    expired_at      timestamptz,
    -- THE invariant: no two active (held or confirmed) bookings of one facility overlap in time,
    -- buffer included. Equality on facility_id first (btree_gist), so the GiST index also serves
    -- per-facility lookups. A violation is SQLSTATE 23P01, which the API answers with 409.
    CONSTRAINT bookings_no_overlap EXCLUDE USING gist (facility_id WITH =, blocks WITH &&)
        WHERE (status IN ('held', 'confirmed'))
);
CREATE INDEX bookings_user_idx ON bookings (user_id, created_at DESC);
-- The sweeper's work list: holds by expiry.
CREATE INDEX bookings_held_expiry_idx ON bookings (hold_expires_at) WHERE status = 'held';

CREATE TABLE enrollments (
    id           uuid PRIMARY KEY,
    class_id     uuid NOT NULL REFERENCES classes (id),
    user_id      uuid NOT NULL REFERENCES users (id),
    spots        integer NOT NULL CHECK (spots BETWEEN 1 AND 100),
    status       text NOT NULL CHECK (status IN ('active', 'cancelled')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    cancelled_at timestamptz
);
CREATE INDEX enrollments_class_idx ON enrollments (class_id) WHERE status = 'active';
CREATE INDEX enrollments_user_idx ON enrollments (user_id, created_at DESC);
