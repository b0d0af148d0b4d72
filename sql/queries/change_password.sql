-- Stores a new password hash and revokes the tokens issued before $3. Only
-- if the hash is still the one the caller verified ($4): a concurrent change
-- wins and this one returns no row. Takes the row lock, bumps the version.
UPDATE auth.users
SET password_hash = $2,
    sessions_revoked_before = $3,
    version = version + 1,
    updated_at = now()
WHERE user_id = $1 AND password_hash = $4
RETURNING user_id, email, role, status, sessions_revoked_before, version
