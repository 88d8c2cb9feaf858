-- API keys for integrations. The key itself is shown once; only its SHA-256 is kept. The visible
-- prefix finds the row; the hash proves the rest.
CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 480),
    -- Shown in listings so an operator can tell keys apart; unique, so it finds the key's row.
    prefix      text NOT NULL CONSTRAINT api_keys_prefix_key UNIQUE,
    secret_hash text NOT NULL,
    -- `read` allows safe requests (GET); `write` allows changes too.
    scopes      text[] NOT NULL CHECK (scopes <@ ARRAY['read', 'write']::text[] AND cardinality(scopes) > 0),
    created_by  uuid NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Refused from this moment: revocation sets it to now, rotation to the end of the grace period.
    expires_at  timestamptz,
    -- The key that replaced this one by rotation.
    rotated_to  uuid REFERENCES api_keys (id)
);
