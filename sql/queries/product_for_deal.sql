-- The product a new deal is for, share-locked until the deal commits so a
-- concurrent delete (which locks the row FOR UPDATE first) waits for it and
-- then sees the deal.
SELECT product_id, name, description, version, created_at, updated_at
FROM catalog.products
WHERE product_id = $1 AND deleted_at IS NULL
FOR SHARE
