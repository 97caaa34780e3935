-- lifecycle.lua: every change of an order after its reservation (DESIGN §4), atomically.
--
--   pending_payment --pay--> paid
--          | |--cancel--> cancelled   (stock and the user's quota return)
--          | '--expire--> expired     (stock and the user's quota return)
--   paid after expiry or cancellation --> refund_required (never re-sold, never lost)
--
-- One script for all transitions, so pay, cancel and expiry racing for one order are decided in
-- one place: whichever runs first wins, the others see its result. Every change bumps the
-- order's version and re-journals it, so the store receives it through the same path as the
-- reservation (and a newer version is never overwritten by an older one).
--
-- KEYS: 1 stock, 2 buyers, 3 orders, 4 deadlines, 5 journal, 6 payments
-- ARGV: 1 action, 2 now_ms, then
--   pay:    3 order_id, 4 amount_cents, 5 payment_id -> {outcome, record[, first outcome]}
--   cancel: 3 order_id, 4 user_id        -> {outcome, record}
--   expire: 3 most deadline groups       -> {orders expired, units returned, groups claimed}
--   expire_order: 3 order_id             -> {outcome, record}: the store-side sweep's repair for
--                                           one overdue order the deadline sweep did not reach
-- outcomes: paid | cancelled | expired | refund_required | unchanged | not_found |
--           not_cancellable | amount_mismatch | duplicate_payment | repeated
--
-- Every successful payment is remembered by its payment id in payments
-- (payment_id -> "<order id>|<amount>|<paid | refund_required | amount_mismatch>"): the same
-- payment reported again gets its first answer ('repeated' + that outcome), and money that did
-- not buy the order (late, a second payment, a wrong amount) is on record for a refund.
-- Record: user|quantity|unit_price_cents|sku|status|version|created_ms|deadline_ms|paid_ms|updated_ms

local action, now = ARGV[1], ARGV[2]

local function fields(record)
  local f = {}
  for part in string.gmatch(record .. '|', '([^|]*)|') do
    f[#f + 1] = part
  end
  return f
end

-- Writes the order in state `status`, one version up, and journals it.
local function save(oid, f, status)
  f[5] = status
  f[6] = tostring(tonumber(f[6]) + 1)
  f[10] = now
  local record = table.concat(f, '|')
  redis.call('HSET', KEYS[3], oid, record)
  redis.call('SADD', KEYS[5], oid)
  return record
end

-- Gives the order's units back to the sale and to its buyer's quota. Everything is read and
-- checked before the first write: a script that fails midway is not rolled back.
local function release(f)
  local qty = tonumber(f[2])
  local row = redis.call('HGET', KEYS[2], f[1])
  local units, latest
  if row then
    units, latest = string.match(row, '^(%d+)|(.*)$')
    if not units then
      return redis.error_reply('malformed buyers row for ' .. f[1])
    end
  end
  redis.call('INCRBY', KEYS[1], qty)
  if row then
    redis.call('HSET', KEYS[2], f[1], math.max(tonumber(units) - qty, 0) .. '|' .. latest)
  end
  return qty
end

if action == 'expire' then
  local groups = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
  local expired, returned = 0, 0
  for _, group in ipairs(groups) do
    -- Claiming the group first is what keeps two sweepers from expiring an order twice.
    if redis.call('ZREM', KEYS[4], group) == 1 then
      for oid in string.gmatch(group, '[^,]+') do
        local record = redis.call('HGET', KEYS[3], oid)
        if record then
          local f = fields(record)
          if f[5] == 'pending_payment' then
            returned = returned + release(f)
            save(oid, f, 'expired')
            expired = expired + 1
          end
        end
      end
    end
  end
  return {expired, returned, #groups}
end

local oid = ARGV[3]
local record = redis.call('HGET', KEYS[3], oid)
if not record then
  return {'not_found'}
end
local f = fields(record)
local status = f[5]

if action == 'expire_order' then
  if status ~= 'pending_payment' then
    -- Redis moved on (paid, expired, …) and the store has not heard: journal it again.
    redis.call('SADD', KEYS[5], oid)
    return {'unchanged', record}
  elseif tonumber(now) < tonumber(f[8]) then
    return {'unchanged', record}
  end
  release(f)
  return {'expired', save(oid, f, 'expired')}
end

if action == 'cancel' then
  if f[1] ~= ARGV[4] then
    return {'not_found'}
  elseif status == 'cancelled' then
    return {'unchanged', record}
  elseif status ~= 'pending_payment' or tonumber(now) >= tonumber(f[8]) then
    return {'not_cancellable', record}
  end
  release(f)
  return {'cancelled', save(oid, f, 'cancelled')}
end

if action == 'pay' then
  local amount, payment_id = ARGV[4], ARGV[5]
  local seen = redis.call('HGET', KEYS[6], payment_id)
  if seen then
    return {'repeated', record, string.match(seen, '|([^|]*)$')}
  end
  local reply, outcome
  if tonumber(f[2]) * tonumber(f[3]) ~= tonumber(amount) then
    reply, outcome = {'amount_mismatch', record}, 'amount_mismatch'
  elseif status == 'paid' or status == 'refund_required' then
    -- Another payment of an order already settled: this money goes back.
    reply, outcome = {'duplicate_payment', record}, 'refund_required'
  elseif status == 'pending_payment' and tonumber(now) < tonumber(f[8]) then
    f[9] = now
    reply, outcome = {'paid', save(oid, f, 'paid')}, 'paid'
  else
    -- Too late: the order expired (or its deadline passed before the sweeper got to it) or was
    -- cancelled. Its units are, or now go, back on sale; the money must go back to the buyer.
    if status == 'pending_payment' then
      release(f)
    end
    f[9] = now
    reply, outcome = {'refund_required', save(oid, f, 'refund_required')}, 'refund_required'
  end
  redis.call('HSET', KEYS[6], payment_id, oid .. '|' .. amount .. '|' .. outcome)
  return reply
end

return redis.error_reply('unknown action ' .. tostring(action))
