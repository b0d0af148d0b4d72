-- Locks a product before deleting it: a deal being created for it holds
-- FOR SHARE, so this waits for that deal to commit, and the open-deal
-- check that follows (a new statement, a new snapshot) sees it.
SELECT product_id FROM catalog.products
WHERE product_id = $1 AND deleted_at IS NULL
FOR UPDATE
