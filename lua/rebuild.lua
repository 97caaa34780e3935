-- rebuild.lua: rebuild a campaign's Redis state from the order store (an operator's repair).
--
-- Redis lost the campaign, or was restored from a snapshot older than the store: the store then
-- holds orders Redis does not know, and their units would sell again. The gateway refuses such
-- a campaign until an operator rebuilds it. The rebuild is two steps:
--
--   merge   (once per chunk of the store's orders) puts each order's record back where Redis
--           has none or an older version. Orders Redis holds at a newer version (not yet in the
--           store) are kept as they are and journaled so the store catches up.
--   settle  (once, last) recomputes everything derived from the orders, atomically: units
--           taken (unpaid and paid orders), every buyer's units and latest order, the payment
--           deadlines of unpaid orders, and the stock left = total - taken. Then the settings.
--
-- Until settle writes the settings a lost campaign has no meta, so no reservation runs against
-- a half-rebuilt state; a stale one is refused by the gateways until they see it repaired.
-- Every argument is checked before the first write.
--
-- A campaign split into stock buckets is rebuilt bucket by bucket, each with its own orders.
-- Its pending transfers are dropped (the shares are recomputed from the total): every bucket
-- but 0 is settled with the units it has taken as its share ('taken'), and bucket 0 with the
-- rest of the total, which the other buckets then borrow as they sell.
--
-- KEYS: 1 meta, 2 stock, 3 buyers, 4 orders, 5 deadlines, 6 journal, 7 transfers
-- merge:  ARGV 1 'merge', then (order_id, version, record) per order
--         -> {records written, records kept because Redis is newer}
-- settle: ARGV 1 'settle', 2 sku, 3 unit_price_cents, 4 per_user_limit, 5 pay_timeout_ms,
--         6 start_ms, 7 end_ms, 8 stock_total (the ledger's: Redis' own may be lost or old;
--         'taken': the units this bucket's orders hold), 9 buckets, 10 this bucket,
--         11 the campaign's whole stock (bucket 0 keeps it as `campaign_total`)
--         -> {stock_total, units taken, units left, orders}; left is never below 0: a campaign
--            that sold more than its total (taken > total) is left with nothing for sale

local function version_of(record)
  local v = string.match(record, '^[^|]*|[^|]*|[^|]*|[^|]*|[^|]*|(%d+)|')
  return tonumber(v)
end

if ARGV[1] == 'merge' then
  if (#ARGV - 1) % 3 ~= 0 then
    return redis.error_reply('rebuild merge: arguments come in threes')
  end
  local n = (#ARGV - 1) / 3
  local oids = {}
  for i = 1, n do
    oids[i] = ARGV[3 * i - 1]
    if not tonumber(ARGV[3 * i]) or not version_of(ARGV[3 * i + 1]) then
      return redis.error_reply('rebuild merge: malformed order ' .. tostring(oids[i]))
    end
  end
  if n == 0 then
    return {0, 0}
  end
  local held = redis.call('HMGET', KEYS[4], unpack(oids))
  local writes, newer = {}, {}
  for i = 1, n do
    local current = held[i] and version_of(held[i])
    if not current or current < tonumber(ARGV[3 * i]) then
      writes[#writes + 1] = oids[i]
      writes[#writes + 1] = ARGV[3 * i + 1]
    elseif current > tonumber(ARGV[3 * i]) then
      newer[#newer + 1] = oids[i]
    end
  end
  if #writes > 0 then
    redis.call('HSET', KEYS[4], unpack(writes))
  end
  if #newer > 0 then
    redis.call('SADD', KEYS[6], unpack(newer))
  end
  return {#writes / 2, #newer}
end

if ARGV[1] ~= 'settle' then
  return redis.error_reply('rebuild: unknown mode ' .. tostring(ARGV[1]))
end
for i = 3, 10 do
  if not tonumber(ARGV[i]) and not (i == 8 and ARGV[i] == 'taken') then
    return redis.error_reply('rebuild settle: argument ' .. i .. ' is not a number')
  end
end

local all = redis.call('HGETALL', KEYS[4])
local taken, orders = 0, 0
local units, latest, latest_created = {}, {}, {}
local deadlines = {}
for i = 1, #all, 2 do
  local oid, record = all[i], all[i + 1]
  local user, qty, status, created, deadline = string.match(record,
    '^([^|]*)|(%d+)|[^|]*|[^|]*|([^|]*)|%d+|(%d+)|(%d+)|')
  if not user then
    return redis.error_reply('rebuild settle: malformed record of order ' .. oid)
  end
  orders = orders + 1
  qty = tonumber(qty)
  if status == 'pending_payment' or status == 'paid' then
    taken = taken + qty
    units[user] = (units[user] or 0) + qty
    if status == 'pending_payment' then
      deadlines[#deadlines + 1] = deadline
      deadlines[#deadlines + 1] = oid
    end
  else
    units[user] = units[user] or 0
  end
  -- The newest order of each user is the one a limit-1 buyer asking again gets back.
  if not latest_created[user] or tonumber(created) >= latest_created[user] then
    latest[user], latest_created[user] = oid, tonumber(created)
  end
end

local total = tonumber(ARGV[8]) or taken
local left = math.max(total - taken, 0)
-- Counts as integers: Lua 5.1 would print a number above 1e14 in exponent form.
local function int(n)
  return string.format('%d', n)
end

redis.call('DEL', KEYS[3], KEYS[5], KEYS[7])
local rows = {}
for user, n in pairs(units) do
  rows[#rows + 1] = user
  rows[#rows + 1] = int(n) .. '|' .. latest[user]
  if #rows >= 1000 then
    redis.call('HSET', KEYS[3], unpack(rows))
    rows = {}
  end
end
if #rows > 0 then
  redis.call('HSET', KEYS[3], unpack(rows))
end
for i = 1, #deadlines, 1000 do
  redis.call('ZADD', KEYS[5], unpack(deadlines, i, math.min(i + 999, #deadlines)))
end
redis.call('SET', KEYS[2], int(left))
redis.call('HSET', KEYS[1],
  'stock_total', int(total),
  'sku', ARGV[2],
  'unit_price_cents', ARGV[3],
  'per_user_limit', ARGV[4],
  'pay_timeout_ms', ARGV[5],
  'start_ms', ARGV[6],
  'end_ms', ARGV[7],
  'buckets', ARGV[9],
  'bucket', ARGV[10])
if ARGV[10] == '0' then
  redis.call('HSET', KEYS[1], 'campaign_total', ARGV[11])
end
return {total, taken, left, orders}
