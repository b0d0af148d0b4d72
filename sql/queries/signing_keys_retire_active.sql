-- Retires the active key; returns its kid (no row when there is none).
UPDATE auth.signing_keys
SET retired_at = now()
WHERE retired_at IS NULL
RETURNING kid
