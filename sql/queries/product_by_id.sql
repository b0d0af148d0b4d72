-- A product that has not been deleted.
SELECT product_id, name, description, version, created_at, updated_at
FROM catalog.products
WHERE product_id = $1 AND deleted_at IS NULL
