-- A hold in one round trip. The steps are those of a hold transaction (see bookings::create_hold):
-- lock the member's row so one member's concurrent requests count their holds one at a time; refuse
-- a member at the hold limit (SQLSTATE CP001; a weekly series counts once); expire stale holds that
-- overlap the requested time, so an expired hold blocks nobody; insert, where the exclusion
-- constraint bookings_no_overlap refuses any overlap with an active booking (SQLSTATE 23P01).
-- Running them inside the server saves five network round trips per hold.
--
-- Returns the expired holds and then the new one (whose id is p_id).
CREATE FUNCTION hold_slot(
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
    WHERE user_id = p_user AND status = 'held' AND hold_expires_at > now()
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
