-- Whether a deal of this product has not ended (by status or window).
SELECT EXISTS (
    SELECT 1 FROM catalog.deals
    WHERE product_id = $1 AND status <> 'ended' AND ends_at > now()
) AS "open!"
