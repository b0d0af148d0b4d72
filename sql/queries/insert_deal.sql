INSERT INTO catalog.deals (deal_id, product_id, price_cents, stock, per_user_limit, starts_at, ends_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING created_at
