-- Reserves stock for one order in one round trip (ARCHITECTURE §5).
-- KEYS: 1 meta, 2 stock, 3 per-user counts, 4 pending zset, 5 reservations,
--       6 idempotency key (present only when the client sent one)
-- ARGV: 1 user_id, 2 quantity, 3 now (ms), 4 order_id, 5 expires_at (ms),
--       6 idempotency TTL (s)
-- Returns one of:
--   {'ok', price_cents}                      reserved
--   {'dup', order_id}                        key seen, that order is settled
--   {'dup_pending', order_id, reservation}   key seen, order still pending
--   {'unknown'} {'inactive'} {'limit', n} {'sold_out'}
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'unknown'}
end
if #KEYS == 6 then
  local first = redis.call('GET', KEYS[6])
  if first then
    local pending = redis.call('HGET', KEYS[5], first)
    if pending then
      return {'dup_pending', first, pending}
    end
    return {'dup', first}
  end
end
local m = redis.call('HMGET', KEYS[1], 'status', 'starts_at', 'ends_at', 'per_user_limit', 'price_cents')
local now = tonumber(ARGV[3])
if m[1] ~= 'active' or now < tonumber(m[2]) or now >= tonumber(m[3]) then
  return {'inactive'}
end
local qty = tonumber(ARGV[2])
local held = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
if held + qty > tonumber(m[4]) then
  return {'limit', m[4]}
end
local left = tonumber(redis.call('GET', KEYS[2]) or '0')
if left < qty then
  return {'sold_out'}
end
redis.call('DECRBY', KEYS[2], qty)
redis.call('HINCRBY', KEYS[3], ARGV[1], qty)
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[4])
redis.call('HSET', KEYS[5], ARGV[4], table.concat({ARGV[1], ARGV[2], m[5], ARGV[3], ARGV[5]}, ' '))
if #KEYS == 6 then
  redis.call('SET', KEYS[6], ARGV[4], 'EX', ARGV[6])
end
return {'ok', m[5]}
