INSERT INTO auth.users (user_id, email, password_hash, role)
VALUES ($1, $2, $3, $4)
ON CONFLICT (email) DO NOTHING
RETURNING user_id
