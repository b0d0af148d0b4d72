-- The order-writer's read model of the catalog: each deal's latest state.
-- An older or repeated version (relay duplicates, replays) changes nothing.
INSERT INTO orders.deals (deal_id, price_cents, per_user_limit, stock, status, starts_at, ends_at, version)
SELECT * FROM UNNEST($1::uuid[], $2::int8[], $3::int4[], $4::int4[], $5::text[],
                     $6::timestamptz[], $7::timestamptz[], $8::int8[])
ON CONFLICT (deal_id) DO UPDATE SET
    price_cents = EXCLUDED.price_cents,
    per_user_limit = EXCLUDED.per_user_limit,
    stock = EXCLUDED.stock,
    status = EXCLUDED.status,
    starts_at = EXCLUDED.starts_at,
    ends_at = EXCLUDED.ends_at,
    version = EXCLUDED.version
WHERE orders.deals.version < EXCLUDED.version
