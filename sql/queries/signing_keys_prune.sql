-- Drops keys retired longer ago than a token's lifetime ($1 seconds): no
-- unexpired token can name them.
DELETE FROM auth.signing_keys
WHERE retired_at < now() - make_interval(secs => $1)
