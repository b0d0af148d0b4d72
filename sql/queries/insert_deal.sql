INSERT INTO catalog.deals (deal_id, product_id, price_cents, stock, per_user_limit, starts_at, ends_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING deal_id, product_id,
          (SELECT p.name FROM catalog.products p WHERE p.product_id = deals.product_id) AS "product_name!",
          price_cents, stock, sold_count, per_user_limit, starts_at, ends_at, status, version, created_at
