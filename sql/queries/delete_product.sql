-- Soft-deletes a product locked by lock_product.sql.
UPDATE catalog.products
SET deleted_at = now(), version = version + 1, updated_at = now()
WHERE product_id = $1 AND deleted_at IS NULL
RETURNING product_id, name, description, version, created_at, updated_at
