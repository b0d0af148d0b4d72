INSERT INTO auth.outbox (event_id, aggregatetype, aggregateid, type, payload)
VALUES ($1, $2, $3, $4, $5)
