-- Signed requests: an API key may require every request made with it to carry a
-- `ClubPulse-Signature` header, an HMAC-SHA256 made with a signing secret. Verifying an HMAC needs
-- the secret itself (a hash of it would not do), so the secret is stored as issued, like the
-- webhook endpoints' secrets; it is shown to the admin once, when it is made, and never listed.
ALTER TABLE api_keys
    ADD COLUMN require_signature boolean NOT NULL DEFAULT false,
    ADD COLUMN signing_secret text,
    -- Rotation keeps the previous secret valid until `previous_signing_secret_expires_at`, so an
    -- integration can switch to the new one without a refused request.
    ADD COLUMN previous_signing_secret text,
    ADD COLUMN previous_signing_secret_expires_at timestamptz,
    -- A key that requires signatures always has a secret to check them with, and only such a key.
    ADD CONSTRAINT api_keys_signing_secret_check
        CHECK (require_signature = (signing_secret IS NOT NULL)),
    -- A previous secret is always bounded by its end of validity.
    ADD CONSTRAINT api_keys_previous_signing_secret_check
        CHECK ((previous_signing_secret IS NULL) = (previous_signing_secret_expires_at IS NULL)
               AND (previous_signing_secret IS NULL OR require_signature));
