-- reserve.lua: the commit point of a purchase (ARCHITECTURE.md §1 stage 8).
--
-- Reserves stock for a batch of purchases of ONE campaign, atomically and in order. Cost is what
-- shapes this script: inside a script every redis.call has a fixed price, and so does every zset
-- member and every number formatted in Lua. So it makes a constant number of calls per batch (one
-- read of all order ids and all buyers, one write of each kind), writes two hash fields and one
-- set member per purchase, one deadline member per batch, and builds records from strings.
-- Purchases of the same batch see each other's effects through the Lua tables below.
--
-- KEYS: 1 meta, 2 stock, 3 buyers, 4 orders, 5 deadlines, 6 journal
-- ARGV: 1 now_ms, then (user_id, order_id, quantity) per reservation.
--
-- Pure function of keys and arguments: time comes in as now_ms, nothing random is read.
-- Errors are raised before the first write, never after (Redis does not roll a script back):
-- a buyers row or a stock value of the wrong shape raises FGCORRUPT, a key of the wrong type
-- WRONGTYPE, and nothing is written.
-- Order ids stay strings throughout (they exceed 2^53, Lua numbers are doubles).
--
-- Data written:
--   buyers[user]    = "<units bought>|<latest order id>"
--   orders[id]      = user|quantity|unit_price_cents|sku|status|version|created_ms|deadline_ms|paid_ms|updated_ms
--   deadlines       += member "<id>,<id>,…" (this batch's accepted orders) scored by their deadline
--   journal         += each accepted order id (a set: orders not yet in the store)
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

local meta = redis.call('HMGET', KEYS[1], 'sku', 'unit_price_cents', 'per_user_limit', 'pay_timeout_ms', 'retiring')
-- A campaign fenced for retirement sells nothing more (ARCHITECTURE.md §9): as good as gone.
if not meta[1] or meta[5] then
  return {{'not_loaded'}}
end
local limit = tonumber(meta[3])
local now = ARGV[1]
local deadline = tostring(tonumber(now) + tonumber(meta[4]))
-- Everything after "user|quantity" is the same for the whole batch: built once.
local record_tail = '|' .. meta[2] .. '|' .. meta[1] .. '|pending_payment|1|' .. now .. '|' .. deadline .. '||' .. now

local n = (#ARGV - 1) / 3
if n < 1 then
  return {}
end
local users, oids, qtys, qty_texts = {}, {}, {}, {}
for i = 1, n do
  users[i] = ARGV[3 * i - 1]
  oids[i] = ARGV[3 * i]
  qty_texts[i] = ARGV[3 * i + 1]
  qtys[i] = tonumber(qty_texts[i])
end

-- Reads: one call each for the whole batch.
local stored = redis.call('HMGET', KEYS[4], unpack(oids))
local buyer_rows = redis.call('HMGET', KEYS[3], unpack(users))
local stock_text = redis.call('GET', KEYS[2]) or '0'
if not string.match(stock_text, '^%-?%d+$') then
  error({err = 'FGCORRUPT stock is not an integer'})
end
local stock = tonumber(stock_text)

local records, bought, latest = {}, {}, {}
for i = 1, n do
  if stored[i] then
    records[oids[i]] = stored[i]
  end
  local user = users[i]
  if bought[user] == nil then
    local row = buyer_rows[i]
    if row then
      local units, oid = string.match(row, '^(%d+)|(.*)$')
      if not units then
        error({err = 'FGCORRUPT buyers row of a user in this batch'})
      end
      bought[user] = tonumber(units)
      latest[user] = oid
    else
      bought[user] = 0
    end
  end
end

local function owner(record)
  return string.match(record, '^([^|]*)|')
end

local replies = {}
local accepted, changed = {}, {}
local new_records = {}
local taken = 0
for i = 1, n do
  local user, oid, qty = users[i], oids[i], qtys[i]
  if not qty or qty < 1 or qty % 1 ~= 0 or user == '' or oid == '' then
    replies[i] = {'bad_request'}
  elseif records[oid] then
    if owner(records[oid]) ~= user then
      replies[i] = {'conflict'}
    else
      replies[i] = {'replayed', oid, records[oid]}
    end
  elseif bought[user] + qty > limit then
    -- A limit-1 buyer asking again gets the order they hold, not an error.
    local held = limit == 1 and latest[user]
    local held_record = held and (records[held] or redis.call('HGET', KEYS[4], held))
    if held_record then
      replies[i] = {'replayed', held, held_record}
    else
      replies[i] = {'limit_reached', tostring(bought[user])}
    end
  elseif stock < qty then
    if stock <= 0 then
      replies[i] = {'sold_out'}
    else
      replies[i] = {'insufficient_stock', tostring(stock)}
    end
  else
    stock = stock - qty
    taken = taken + qty
    if not changed[user] then
      changed[user] = true
      changed[#changed + 1] = user
    end
    bought[user] = bought[user] + qty
    latest[user] = oid
    local record = user .. '|' .. qty_texts[i] .. record_tail
    records[oid] = record
    new_records[#new_records + 1] = oid
    new_records[#new_records + 1] = record
    accepted[#accepted + 1] = oid
    replies[i] = {'accepted', oid, record}
  end
end

-- Writes: one call each for the whole batch, in batch order (deterministic).
if taken > 0 then
  -- The two keys not read above: a wrong type fails here, before the first write.
  redis.call('ZCARD', KEYS[5])
  redis.call('SCARD', KEYS[6])
  local new_buyers = {}
  for _, user in ipairs(changed) do
    new_buyers[#new_buyers + 1] = user
    new_buyers[#new_buyers + 1] = bought[user] .. '|' .. latest[user]
  end
  redis.call('DECRBY', KEYS[2], taken)
  redis.call('HSET', KEYS[3], unpack(new_buyers))
  redis.call('HSET', KEYS[4], unpack(new_records))
  redis.call('ZADD', KEYS[5], deadline, table.concat(accepted, ','))
  redis.call('SADD', KEYS[6], unpack(accepted))
end
return replies
