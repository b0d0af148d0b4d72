SELECT deal_id, price_cents, per_user_limit, starts_at, ends_at
FROM orders.deals
WHERE deal_id = ANY($1)
