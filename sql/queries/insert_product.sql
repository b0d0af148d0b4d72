INSERT INTO catalog.products (product_id, name, description)
VALUES ($1, $2, $3)
RETURNING product_id, name, description, version, created_at, updated_at
