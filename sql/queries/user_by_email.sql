SELECT user_id, password_hash, role
FROM auth.users
WHERE email = $1
