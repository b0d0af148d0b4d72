-- recover-redis: the idempotency keys of confirmed orders (Redis lost them;
-- an expired order's key may be used again, so it is not restored).
SELECT deal_id, user_id, order_id, idempotency_key AS "idempotency_key!"
FROM orders.orders
WHERE status = 'confirmed' AND idempotency_key IS NOT NULL AND deal_id = ANY($1)
