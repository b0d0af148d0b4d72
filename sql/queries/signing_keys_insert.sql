-- Adds the new active key.
INSERT INTO auth.signing_keys (kid, secret)
VALUES ($1, $2)
