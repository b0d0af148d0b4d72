-- Used by `flashdeal seed`: creates the admin or resets its password and role.
INSERT INTO auth.users (user_id, email, password_hash, role)
VALUES ($1, $2, $3, 'admin')
ON CONFLICT (email) DO UPDATE
SET password_hash = EXCLUDED.password_hash, role = 'admin', updated_at = now()
RETURNING user_id
