SELECT order_id, user_id, deal_id, quantity, unit_price_cents, status, created_at
FROM orders.orders
WHERE order_id = $1
