-- Changes a product's name and/or description (NULL keeps the current
-- value); the UPDATE takes the row lock and numbers the change.
UPDATE catalog.products
SET name = coalesce($2, name),
    description = coalesce($3, description),
    version = version + 1,
    updated_at = now()
WHERE product_id = $1 AND deleted_at IS NULL
RETURNING product_id, name, description, version, created_at, updated_at
