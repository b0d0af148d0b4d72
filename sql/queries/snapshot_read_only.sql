-- First statement of a transaction whose reads must all see one snapshot.
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY
