SELECT deal_id, stock, sold_count, status, price_cents, per_user_limit, starts_at, ends_at, version
FROM catalog.deals
WHERE $1::uuid IS NULL OR deal_id = $1
ORDER BY deal_id
