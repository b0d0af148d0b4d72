INSERT INTO catalog.products (product_id, name, description)
VALUES ($1, $2, $3)
