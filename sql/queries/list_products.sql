-- Products not deleted, newest first; `$1` bounds the page.
SELECT product_id, name, description, version, created_at, updated_at
FROM catalog.products
WHERE deleted_at IS NULL
ORDER BY created_at DESC, product_id DESC
LIMIT $1
