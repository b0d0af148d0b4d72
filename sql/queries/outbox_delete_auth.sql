DELETE FROM auth.outbox WHERE id = ANY($1)
