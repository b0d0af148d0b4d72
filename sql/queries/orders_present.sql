-- Which of a batch's order ids have a row (inserted now or on a previous delivery).
SELECT order_id AS "order_id!", status AS "status!"
FROM orders.orders
WHERE order_id = ANY($1::uuid[])
