-- A member's calendar feed: calendar apps fetch `/api/v1/me/calendar.ics?token=...` and cannot
-- send headers, so the token in the URL is the credential. Only its SHA-256 is kept (the token is
-- shown once); one feed per member, so creating it again replaces the token (rotation) and
-- deleting the row revokes it.
CREATE TABLE calendar_feeds (
    user_id    uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- Unique, so it finds the feed's row; a collision of fresh random tokens is not expected.
    token_hash text NOT NULL CONSTRAINT calendar_feeds_token_hash_key UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
