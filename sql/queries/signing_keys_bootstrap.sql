-- Seeds an empty key ring with the configured key. Several gateways may
-- boot at once: the loser's insert conflicts (primary key or the one-active
-- index) and does nothing.
INSERT INTO auth.signing_keys (kid, secret)
SELECT $1, $2
WHERE NOT EXISTS (SELECT 1 FROM auth.signing_keys)
ON CONFLICT DO NOTHING
