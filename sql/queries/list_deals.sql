-- Deals for `GET /deals`, soonest first. $1: page size; $2: a substring of
-- the product name, matched case-insensitively, or NULL; $3: the status
-- clients see (upcoming|active|paused|ended), or NULL for every deal that
-- has not ended; $4: now. The CASE is `display_status` in
-- gateway/src/catalog/view.rs: keep the two equal.
SELECT d.deal_id, d.product_id, p.name AS product_name, d.price_cents, d.stock, d.sold_count,
       d.per_user_limit, d.starts_at, d.ends_at, d.status, d.version, d.created_at
FROM catalog.deals d
JOIN catalog.products p USING (product_id)
CROSS JOIN LATERAL (
    SELECT CASE
        WHEN d.status = 'ended' OR d.ends_at <= $4 THEN 'ended'
        WHEN d.status = 'paused' THEN 'paused'
        WHEN d.starts_at > $4 THEN 'upcoming'
        ELSE 'active'
    END AS shown
) s
WHERE ($2::text IS NULL OR strpos(lower(p.name), lower($2)) > 0)
  AND CASE WHEN $3::text IS NULL THEN s.shown <> 'ended' ELSE s.shown = $3 END
ORDER BY d.starts_at, d.deal_id
LIMIT $1
