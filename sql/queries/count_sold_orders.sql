-- Adds newly confirmed orders to their deal's sold_count, once per order:
-- a redelivered or replayed confirmation is already in sold_orders.
-- Returns how many orders were counted for the first time.
WITH new AS (
    INSERT INTO catalog.sold_orders (order_id, deal_id, quantity)
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int4[])
    ON CONFLICT (order_id) DO NOTHING
    RETURNING deal_id, quantity
), per_deal AS (
    SELECT deal_id, sum(quantity)::int4 AS units FROM new GROUP BY deal_id
), updated AS (
    UPDATE catalog.deals d
    SET sold_count = d.sold_count + per_deal.units, updated_at = now()
    FROM per_deal
    WHERE d.deal_id = per_deal.deal_id
    RETURNING d.deal_id
)
SELECT count(*) AS "counted!" FROM new
