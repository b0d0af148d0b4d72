-- Deals that have not ended: `flashdeal seed` adds a demo deal only when there are none.
SELECT count(*) AS "count!" FROM catalog.deals WHERE ends_at > now() AND status <> 'ended'
