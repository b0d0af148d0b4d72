-- Rebuilds one deal's hot-path state after Redis lost it
-- (`flashdeal recover-redis`). One script, so the deal appears whole or
-- not at all: reserve.lua never sees meta without the stock, counts and
-- pending reservations that go with it. Refuses when the meta exists (the
-- deal was not lost) unless forced.
-- KEYS: 1 meta, 2 stock, 3 per-user counts, 4 pending zset, 5 reservations
-- ARGV: 1 force ('1' or '0'), 2 version, 3 status, 4 starts_at ms,
--       5 ends_at ms, 6 price_cents, 7 per_user_limit, 8 total stock,
--       9 remaining, 10 number of users U, then U pairs (user_id, units),
--       then triples (order_id, expires_at ms, reservation record) to the end
-- Returns 1 written, 0 refused (meta present).
if ARGV[1] ~= '1' and redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
redis.call('SET', KEYS[2], ARGV[9])
local i = 11
for _ = 1, tonumber(ARGV[10]) do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i + 2 <= #ARGV do
  redis.call('ZADD', KEYS[4], ARGV[i + 1], ARGV[i])
  redis.call('HSET', KEYS[5], ARGV[i], ARGV[i + 2])
  i = i + 3
end
redis.call('HSET', KEYS[1],
  'status', ARGV[3], 'starts_at', ARGV[4], 'ends_at', ARGV[5],
  'price_cents', ARGV[6], 'per_user_limit', ARGV[7], 'stock', ARGV[8],
  'version', ARGV[2])
return 1
