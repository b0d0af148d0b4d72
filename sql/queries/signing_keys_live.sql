-- The keys that may still verify a token: the active one and those retired
-- less than $1 seconds ago (a token's lifetime), newest first.
SELECT kid, secret, retired_at IS NULL AS "active!"
FROM auth.signing_keys
WHERE retired_at IS NULL OR retired_at > now() - make_interval(secs => $1)
ORDER BY created_at DESC
