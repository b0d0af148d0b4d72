-- Sets a locked deal's status and adds `$3` to its stock, numbering the
-- change (the gateway checked stock + $3 >= sold_count under the row lock).
UPDATE catalog.deals
SET status = $2, stock = stock + $3, version = version + 1, updated_at = now()
WHERE deal_id = $1
RETURNING deal_id, product_id,
          (SELECT p.name FROM catalog.products p WHERE p.product_id = deals.product_id) AS "product_name!",
          price_cents, stock, sold_count, per_user_limit, starts_at, ends_at, status, version, created_at
