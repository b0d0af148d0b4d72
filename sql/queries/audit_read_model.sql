SELECT deal_id, price_cents, per_user_limit, version FROM orders.deals WHERE deal_id = ANY($1)
