-- recover-redis: every deal's terms and version, as the catalog projector would write them.
SELECT deal_id, stock, status, price_cents, per_user_limit, starts_at, ends_at, version
FROM catalog.deals
WHERE $1::uuid IS NULL OR deal_id = $1
ORDER BY deal_id
