-- recover-redis: confirmed units per deal and user (the per-user counts Redis lost).
SELECT deal_id, user_id, sum(quantity)::int8 AS "units!"
FROM orders.orders
WHERE status = 'confirmed' AND deal_id = ANY($1)
GROUP BY deal_id, user_id
