-- Applies an order's verdict to its deal's reservations, exactly once.
-- The pending-zset member is the guard: only the call that removes it may
-- return stock, so a redelivered or replayed verdict changes nothing.
-- KEYS: 1 pending zset, 2 reservation hash, 3 remaining stock, 4 per-user counts
-- ARGV: 1 order_id, 2 'confirmed' | 'released', 3 user_id, 4 quantity
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if removed == 1 and ARGV[2] == 'released' then
  redis.call('INCRBY', KEYS[3], ARGV[4])
  local left = redis.call('HINCRBY', KEYS[4], ARGV[3], -tonumber(ARGV[4]))
  if left <= 0 then
    redis.call('HDEL', KEYS[4], ARGV[3])
  end
end
return removed
