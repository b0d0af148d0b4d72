-- The largest number of units one user holds, per deal.
SELECT deal_id, max(units)::int8 AS "units!"
FROM (
    SELECT deal_id, user_id, sum(quantity) AS units
    FROM orders.orders
    WHERE status = 'confirmed' AND deal_id = ANY($1)
    GROUP BY deal_id, user_id
) per_user
GROUP BY deal_id
