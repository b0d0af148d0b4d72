-- Orders whose status projection should still be in Redis: `order:{id}`
-- lives ORDER_STATUS_TTL_SECS ($2) after the projector wrote it, so older
-- orders are not compared.
SELECT order_id, deal_id, status
FROM orders.orders
WHERE deal_id = ANY($1) AND created_at > now() - make_interval(secs => $2::float8)
