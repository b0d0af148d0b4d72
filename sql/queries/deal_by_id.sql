SELECT d.deal_id, d.product_id, p.name AS product_name, d.price_cents, d.stock, d.sold_count,
       d.per_user_limit, d.starts_at, d.ends_at, d.status, d.version, d.created_at
FROM catalog.deals d
JOIN catalog.products p USING (product_id)
WHERE d.deal_id = $1
