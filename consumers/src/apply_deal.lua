-- Applies one DealChanged to the deal's hot-path state, once per version.
-- The meta hash remembers the last applied version: a relay duplicate or a
-- replayed event has a version at or below it and changes nothing. The
-- remaining stock moves by the change of the deal's *total* (this event's
-- total minus the total Redis holds), not by the event's own delta: should
-- a version be skipped (an idempotent producer may deliver v5 before a
-- retried v4, which then counts as already applied), no delta is lost.
-- KEYS: 1 meta hash, 2 remaining stock
-- ARGV: 1 version, 2 status, 3 starts_at ms, 4 ends_at ms, 5 price_cents,
--       6 per_user_limit, 7 total stock, 8 stock delta (informational)
-- Returns 1 applied, 0 already applied, -1 the deal is not in Redis and
-- this is not its first version: Redis lost it, and a delta applied to
-- nothing would be wrong (`flashdeal recover-redis` rebuilds it first).
local applied = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if tonumber(ARGV[1]) <= applied then
  return 0
end
if applied == 0 and tonumber(ARGV[1]) > 1 then
  return -1
end
local held = tonumber(redis.call('HGET', KEYS[1], 'stock') or '0')
redis.call('HSET', KEYS[1],
  'status', ARGV[2], 'starts_at', ARGV[3], 'ends_at', ARGV[4],
  'price_cents', ARGV[5], 'per_user_limit', ARGV[6], 'stock', ARGV[7],
  'version', ARGV[1])
redis.call('INCRBY', KEYS[2], tonumber(ARGV[7]) - held)
return 1
