SELECT deal_id, sum(quantity)::int8 AS "units!"
FROM orders.orders
WHERE status = 'confirmed' AND deal_id = ANY($1)
GROUP BY deal_id
