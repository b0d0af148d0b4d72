SELECT count(*) AS "events!", min(created_at) AS oldest FROM auth.outbox
