SELECT order_id, deal_id, status FROM orders.orders WHERE deal_id = ANY($1)
