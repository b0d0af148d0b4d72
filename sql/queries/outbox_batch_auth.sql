-- The oldest unpublished events, locked: a second relay that slipped past
-- the advisory lock waits here instead of publishing out of order.
SELECT id, event_id, aggregateid, type, payload
FROM auth.outbox
ORDER BY id
LIMIT $1
FOR UPDATE
