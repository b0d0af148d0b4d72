DELETE FROM catalog.outbox WHERE id = ANY($1)
