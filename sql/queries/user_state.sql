-- A user's state as the UserChanged event carries it.
SELECT user_id, email, role, status, sessions_revoked_before, version
FROM auth.users
WHERE user_id = $1
