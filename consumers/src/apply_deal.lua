-- Applies one DealChanged to the deal's hot-path state, once per version.
-- The meta hash remembers the last applied version: a relay duplicate or a
-- replayed event has a version at or below it and changes nothing, so the
-- remaining stock, kept as the sum of the deltas, is never counted twice.
-- KEYS: 1 meta hash, 2 remaining stock
-- ARGV: 1 version, 2 status, 3 starts_at ms, 4 ends_at ms, 5 price_cents,
--       6 per_user_limit, 7 total stock, 8 stock delta
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
redis.call('HSET', KEYS[1],
  'status', ARGV[2], 'starts_at', ARGV[3], 'ends_at', ARGV[4],
  'price_cents', ARGV[5], 'per_user_limit', ARGV[6], 'stock', ARGV[7],
  'version', ARGV[1])
redis.call('INCRBY', KEYS[2], ARGV[8])
return 1
