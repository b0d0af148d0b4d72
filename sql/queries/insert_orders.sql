-- One statement per batch: every intent or expiry of the batch, inserted or
-- skipped. A conflict on order_id is a redelivery, or the later of an
-- intent/expiry pair (the first one decided the order's fate); a conflict
-- on the idempotency key with another order_id is caught by the follow-up
-- lookup and rejected.
INSERT INTO orders.orders
    (order_id, user_id, deal_id, quantity, unit_price_cents, status,
     idempotency_key, intent_event_id, reserved_at)
SELECT o.order_id, o.user_id, o.deal_id, o.quantity, o.unit_price_cents, o.status,
       o.idempotency_key, o.intent_event_id, o.reserved_at
FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::int4[], $5::int8[], $6::text[],
            $7::text[], $8::uuid[], $9::timestamptz[])
     AS o(order_id, user_id, deal_id, quantity, unit_price_cents, status,
          idempotency_key, intent_event_id, reserved_at)
ON CONFLICT DO NOTHING
