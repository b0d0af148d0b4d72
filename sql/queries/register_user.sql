-- Signup: inserts a user and returns its state for the UserRegistered event;
-- no row when the email is taken.
INSERT INTO auth.users (user_id, email, password_hash, role)
VALUES ($1, $2, $3, $4)
ON CONFLICT (email) DO NOTHING
RETURNING user_id, email, role, status, sessions_revoked_before, version
