-- reserve.lua: the commit point of a purchase (DESIGN §1 stage 8).
--
-- Reserves stock for a batch of purchases of ONE campaign, atomically, in order. Carrying several
-- reservations per call is what lets the gateway approach Redis' pipelined ceiling: the cost of a
-- script call is mostly the call, not the work inside.
--
-- KEYS: 1 meta, 2 stock, 3 buyers, 4 user_orders, 5 orders, 6 deadlines, 7 journal
-- ARGV: 1 now_ms, then (user_id, order_id, quantity) per reservation.
--
-- Pure function of keys and arguments: time comes in as now_ms, nothing random is read.
-- Order ids stay strings throughout (they exceed 2^53, Lua numbers are doubles).
--
-- Reply: one array per reservation, in order:
--   {'accepted', order_id, record}      stock taken, order recorded, journal entry written
--   {'replayed', order_id, record}      the order already exists: the original answer
--   {'limit_reached', units_bought}
--   {'sold_out'}
--   {'insufficient_stock', units_left}
--   {'conflict'}                        the order id belongs to another user
--   {'bad_request'}
-- or {'not_loaded'} once, for the whole batch, when the campaign is not in Redis.
-- Record: user|quantity|unit_price_cents|sku|status|version|created_ms|deadline_ms|paid_ms|updated_ms

local meta = redis.call('HMGET', KEYS[1], 'sku', 'unit_price_cents', 'per_user_limit', 'pay_timeout_ms')
if not meta[1] then
  return {{'not_loaded'}}
end
local sku, price = meta[1], meta[2]
local limit = tonumber(meta[3])
local pay_timeout = tonumber(meta[4])
local now = tonumber(ARGV[1])

local function owner(record)
  return string.match(record, '^([^|]*)|')
end

local function reserve(user, oid, qty)
  if not qty or qty < 1 or qty % 1 ~= 0 or user == '' or oid == '' then
    return {'bad_request'}
  end
  local record = redis.call('HGET', KEYS[5], oid)
  if record then
    if owner(record) ~= user then
      return {'conflict'}
    end
    return {'replayed', oid, record}
  end
  local bought = tonumber(redis.call('HGET', KEYS[3], user) or '0')
  if bought + qty > limit then
    if limit == 1 then
      -- A limit-1 buyer asking again gets the order they already hold, not an error.
      local previous = redis.call('HGET', KEYS[4], user)
      if previous then
        local previous_record = redis.call('HGET', KEYS[5], previous)
        if previous_record then
          return {'replayed', previous, previous_record}
        end
      end
    end
    return {'limit_reached', tostring(bought)}
  end
  local stock = tonumber(redis.call('GET', KEYS[2]) or '0')
  if stock < qty then
    if stock <= 0 then
      return {'sold_out'}
    end
    return {'insufficient_stock', tostring(stock)}
  end
  redis.call('DECRBY', KEYS[2], qty)
  redis.call('HINCRBY', KEYS[3], user, qty)
  redis.call('HSET', KEYS[4], user, oid)
  local deadline = now + pay_timeout
  record = table.concat({user, qty, price, sku, 'pending_payment', 1, now, deadline, '', now}, '|')
  redis.call('HSET', KEYS[5], oid, record)
  redis.call('ZADD', KEYS[6], deadline, oid)
  redis.call('ZADD', KEYS[7], now, oid)
  return {'accepted', oid, record}
end

local replies = {}
for i = 2, #ARGV, 3 do
  replies[#replies + 1] = reserve(ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]))
end
return replies
