-- Serialises key rotations for the rest of the transaction.
SELECT true AS "locked!" FROM pg_advisory_xact_lock($1)
