SELECT count(*) AS "events!", min(created_at) AS oldest FROM catalog.outbox
