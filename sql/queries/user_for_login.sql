-- Login: the hash to verify and whether the account may log in.
SELECT user_id, password_hash, role, status
FROM auth.users
WHERE email = $1
