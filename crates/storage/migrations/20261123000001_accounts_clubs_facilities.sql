-- The foundation: accounts, clubs and their facilities.
--
-- btree_gist lets one exclusion constraint combine equality on a facility with overlap of time
-- ranges (the booking engine's no-double-booking rule); vector stores search embeddings. Both are
-- created here so that a server lacking either fails at the first migration, not months later.
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    -- Stored lower-cased by the application; the check keeps one mailbox from becoming two accounts
    -- through a client that forgot to normalise.
    email         text NOT NULL CONSTRAINT users_email_lowercase CHECK (email = lower(email)),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 400),
    -- A PHC string (argon2id, with its parameters and salt). Never the password.
    password_hash text NOT NULL,
    role          text NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'staff', 'admin')),
    -- A banned account cannot log in; its sessions were revoked when it was banned.
    banned_at     timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- Named so that a duplicate registration maps straight to 409 email_taken.
    CONSTRAINT users_email_key UNIQUE (email)
);

CREATE TABLE clubs (
    id         uuid PRIMARY KEY,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 480),
    -- An IANA zone name, validated by the application against its time-zone database.
    timezone   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- Two clubs with the same name (in any letter case) would be indistinguishable in every list.
CREATE UNIQUE INDEX clubs_name_key ON clubs (lower(name));

CREATE TABLE facilities (
    id             uuid PRIMARY KEY,
    club_id        uuid NOT NULL REFERENCES clubs (id),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 480),
    sport          text NOT NULL CHECK (sport ~ '^[a-z][a-z0-9_-]{1,31}$'),
    description    text NOT NULL DEFAULT '',
    specifications jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(specifications) = 'object'),
    -- {"mon": [["07:00","23:00"]], …} in the club's local time; shape checked by the application.
    opening_hours  jsonb NOT NULL CHECK (jsonb_typeof(opening_hours) = 'object'),
    slot_minutes   integer NOT NULL DEFAULT 30
                   CHECK (slot_minutes BETWEEN 5 AND 480 AND slot_minutes % 5 = 0),
    buffer_minutes integer NOT NULL DEFAULT 0 CHECK (buffer_minutes BETWEEN 0 AND 240),
    price_cents    bigint NOT NULL DEFAULT 0 CHECK (price_cents BETWEEN 0 AND 100000000),
    currency       text NOT NULL DEFAULT 'EUR' CHECK (currency ~ '^[A-Z]{3}$'),
    -- Retired facilities stay for the bookings that reference them but are no longer listed.
    retired_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
-- Within a club, live facilities have distinct names; a retired one frees its name.
CREATE UNIQUE INDEX facilities_club_name_key ON facilities (club_id, lower(name)) WHERE retired_at IS NULL;
CREATE INDEX facilities_listing_idx ON facilities (club_id, sport, name) WHERE retired_at IS NULL;
