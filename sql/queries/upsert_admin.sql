-- Used by `flashdeal seed`: creates the admin, or resets its password and
-- role (which revokes its older sessions, like a password change).
INSERT INTO auth.users (user_id, email, password_hash, role)
VALUES ($1, $2, $3, 'admin')
ON CONFLICT (email) DO UPDATE
SET password_hash = EXCLUDED.password_hash,
    role = 'admin',
    sessions_revoked_before = now(),
    version = auth.users.version + 1,
    updated_at = now()
RETURNING user_id, email, role, status, sessions_revoked_before, version, (xmax = 0) AS "inserted!"
