-- Password change: the current hash, role and status of a user.
SELECT password_hash, role, status
FROM auth.users
WHERE user_id = $1
