-- Block/unblock: sets the status if it differs (no row otherwise), under the
-- row lock, bumping the version.
UPDATE auth.users
SET status = $2,
    version = version + 1,
    updated_at = now()
WHERE user_id = $1 AND status <> $2
RETURNING user_id, email, role, status, sessions_revoked_before, version
