-- Unmet demand, for the manager's dashboard (`GET /api/v1/admin/stats`).
--
-- Two append-only logs of what members wanted and did not get. Nothing updates or deletes their
-- rows, so they need no locks beyond their own insert, and a row is written outside the
-- transaction of the request it describes: recording is best effort and must never turn the
-- member's answer into an error. Neither carries a member id: the dashboard counts demand, it does
-- not follow people.

-- A hold refused because the time was taken (409 `slot_unavailable`), one row per refusal,
-- written after `hold_slot` rolled back. The dashboard counts them per facility and per local hour
-- of the wanted start, so the club, and the local date and hour of the start in the club's time
-- zone, are stored with the facility when the refusal is recorded (the application knows them
-- then): counting a year of refusals needs no join and no time-zone conversion per row.
CREATE TABLE demand_conflicts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    facility_id     uuid NOT NULL REFERENCES facilities (id),
    club_id         uuid NOT NULL REFERENCES clubs (id),
    -- The time the member asked for, half-open [requested_start, requested_end).
    requested_start timestamptz NOT NULL,
    requested_end   timestamptz NOT NULL CHECK (requested_end > requested_start),
    local_date      date NOT NULL,
    local_hour      smallint NOT NULL CHECK (local_hour BETWEEN 0 AND 23),
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
-- The dashboard scopes conflicts by the wanted local date, per club or for every club, and reads
-- them from the index alone.
CREATE INDEX demand_conflicts_day_idx ON demand_conflicts (local_date, club_id)
    INCLUDE (facility_id, local_hour);

-- A search that found nothing: its query as normalised by the application (trimmed, lower-cased,
-- at most 100 characters) and its club filter. `club_id` has no foreign key: a filter naming an
-- unknown club is still a search that found nothing, and must not fail to record.
CREATE TABLE demand_searches (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    query       text NOT NULL CHECK (length(query) BETWEEN 1 AND 100),
    club_id     uuid,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
-- The dashboard scopes searches by when they were made.
CREATE INDEX demand_searches_recorded_idx ON demand_searches (recorded_at, club_id);
