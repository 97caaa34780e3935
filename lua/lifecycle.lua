-- lifecycle.lua: every change of an order after its reservation (ARCHITECTURE.md §4), atomically.
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
-- KEYS: 1 stock, 2 buyers, 3 orders, 4 deadlines, 5 journal, 6 payments, 7 meta
-- ARGV: 1 action, 2 now_ms, then
--   pay:    3 order_id, 4 amount_cents, 5 payment_id -> {outcome, record[, first outcome]}
--   cancel: 3 order_id, 4 user_id        -> {outcome, record}
--   expire: 3 most deadline groups, 4 due groups to pass over (held ones, see below)
--           -> {orders expired, units returned, groups taken, groups held, held order id, ...}
--   expire_order: 3 order_id             -> {outcome, record}: the store-side sweep's repair for
--                                           one overdue order the deadline sweep did not reach
-- outcomes: paid | cancelled | expired | refund_required | unchanged | not_found |
--           not_cancellable | amount_mismatch | duplicate_payment | repeated | payment_id_reused |
--           retiring (the campaign is fenced for retirement or half removed: nothing changed)
--
-- Every successful payment is remembered by its payment id in payments
-- (payment_id -> "<order id>|<amount>|<paid | refund_required | amount_mismatch>"): the same
-- payment reported again gets its first answer ('repeated' + that outcome), and money that did
-- not buy the order (late, a second payment, a wrong amount) is on record for a refund. A
-- payment id belongs to one order and one amount: reported for another, it is refused
-- ('payment_id_reused') and changes nothing.
-- Record: user|quantity|unit_price_cents|sku|status|version|created_ms|deadline_ms|paid_ms|updated_ms
--
-- Errors are raised before the first write, never after (Redis does not roll a script back):
-- everything an action will write is read and checked first. Data that does not have the shape
-- the scripts write (a buyers row, an order record, the stock, a key of the wrong type) raises
-- FGCORRUPT (or Redis' WRONGTYPE) and changes nothing. The expiry sweep, which handles many
-- orders, does not fail for one: it leaves a malformed order as it is (record, stock, quota,
-- its deadline entry) and reports it, and expires the others.

local action, now = ARGV[1], ARGV[2]

local function corrupt(what)
  error({err = 'FGCORRUPT ' .. what})
end

local function refuse(what)
  error({err = 'ERR ' .. what})
end

local function integer(text)
  return type(text) == 'string' and string.match(text, '^%d+$') ~= nil
end

if not integer(now) then
  refuse('now_ms is not a number')
end

local STATUSES = {
  pending_payment = true, paid = true, cancelled = true, expired = true, refund_required = true,
}
local NUMBERS = {2, 3, 6, 7, 8, 10}

-- The fields of a record, or nil when it does not have the shape reserve.lua writes.
local function fields(record)
  local f = {}
  for part in string.gmatch(record .. '|', '([^|]*)|') do
    f[#f + 1] = part
  end
  if #f ~= 10 or f[1] == '' or not STATUSES[f[5]] then
    return nil
  end
  for _, i in ipairs(NUMBERS) do
    if not integer(f[i]) then
      return nil
    end
  end
  if tonumber(f[2]) < 1 or (f[9] ~= '' and not integer(f[9])) then
    return nil
  end
  return f
end

-- The units left for sale, checked: releasing adds to them.
local function stock()
  local left = redis.call('GET', KEYS[1])
  if not left or not string.match(left, '^%-?%d+$') then
    corrupt('stock is missing or not an integer')
  end
  return left
end

-- A buyer's row {units, latest order id}, false when there is none (nothing to give back), or
-- nil when it does not have the shape reserve.lua writes.
local function buyer(user)
  local row = redis.call('HGET', KEYS[2], user)
  if not row then
    return false
  end
  local units, latest = string.match(row, '^(%d+)|([^|]*)$')
  if not units then
    return nil
  end
  return {units = tonumber(units), latest = latest}
end

-- Raises unless the journal is a set (or absent): SADD to it comes after other writes.
local function journal_writable(oid)
  redis.call('SISMEMBER', KEYS[5], oid)
end

-- Writes the order in state `status`, one version up, and journals it. Cannot fail: the record
-- and the journal were checked.
local function save(oid, f, status)
  f[5] = status
  f[6] = tostring(tonumber(f[6]) + 1)
  f[10] = now
  local record = table.concat(f, '|')
  redis.call('HSET', KEYS[3], oid, record)
  redis.call('SADD', KEYS[5], oid)
  return record
end

-- Gives the order's units back to the sale and to its buyer's quota (`row` as buyer() read
-- it, updated here for the next order of the same buyer). Cannot fail: all was checked.
local function release(f, row)
  local qty = tonumber(f[2])
  redis.call('INCRBY', KEYS[1], qty)
  if row then
    row.units = math.max(row.units - qty, 0)
    redis.call('HSET', KEYS[2], f[1], row.units .. '|' .. row.latest)
  end
  return qty
end

-- The order `oid` with its fields, or raises when its record is malformed; nil when absent.
local function order(oid)
  local record = redis.call('HGET', KEYS[3], oid)
  if not record then
    return nil
  end
  local f = fields(record)
  if not f then
    corrupt('record of order ' .. oid)
  end
  return record, f
end

-- Checks what releasing `f` will touch; returns the buyer's row for release().
local function releasable(oid, f)
  local row = buyer(f[1])
  if row == nil then
    corrupt('buyers row of the owner of order ' .. oid)
  end
  stock()
  journal_writable(oid)
  return row
end

if action == 'expire' then
  if not integer(ARGV[3]) or not integer(ARGV[4] or '0') then
    refuse('expire needs two counts')
  end
  local most, pass = ARGV[3], ARGV[4] or '0'
  local due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'WITHSCORES', 'LIMIT', pass, most)
  -- Read and check everything first. Per group: the orders to expire and the malformed ones.
  local plans, rows, held_ids = {}, {}, {}
  local any = false
  for i = 1, #due, 2 do
    local group, score = due[i], due[i + 1]
    local plan = {group = group, score = score, expire = {}, bad = {}}
    for oid in string.gmatch(group, '[^,]+') do
      -- Order ids are decimal; any other member names no order the gateway made.
      local record = integer(oid) and redis.call('HGET', KEYS[3], oid)
      if record then
        local f = fields(record)
        if not f then
          plan.bad[#plan.bad + 1] = oid
        elseif f[5] == 'pending_payment' then
          local user = f[1]
          if rows[user] == nil then
            rows[user] = buyer(user)
          end
          if rows[user] == nil then
            plan.bad[#plan.bad + 1] = oid
          else
            plan.expire[#plan.expire + 1] = {oid, f}
            any = true
          end
        end
      end
    end
    plans[#plans + 1] = plan
  end
  if any then
    stock()
    journal_writable('')
  end
  -- Then write. A group is claimed (removed) by exactly one sweep; a group holding a malformed
  -- order keeps a deadline entry for the malformed ones alone (same score), so they are neither
  -- lost nor changed, and are passed over until an operator repairs them.
  local expired, returned, held = 0, 0, 0
  for _, plan in ipairs(plans) do
    if #plan.bad > 0 then
      held = held + 1
      for _, oid in ipairs(plan.bad) do
        held_ids[#held_ids + 1] = oid
      end
    end
    if #plan.bad == 0 then
      redis.call('ZREM', KEYS[4], plan.group)
    elseif #plan.expire > 0 then
      redis.call('ZREM', KEYS[4], plan.group)
      redis.call('ZADD', KEYS[4], plan.score, table.concat(plan.bad, ','))
    end
    for _, item in ipairs(plan.expire) do
      local oid, f = item[1], item[2]
      returned = returned + release(f, rows[f[1]])
      save(oid, f, 'expired')
      expired = expired + 1
    end
  end
  local reply = {expired, returned, #plans, held}
  for _, oid in ipairs(held_ids) do
    reply[#reply + 1] = oid
  end
  return reply
end

local oid = ARGV[3]
local record, f = order(oid)
if not record then
  return {'not_found'}
end
-- A campaign being retired (fenced) or half removed (no meta, orders left) changes no order
-- any more: its orders are final and the store answers for them (ARCHITECTURE.md §9). The
-- expiry sweep above needs no fence: a campaign is fenced only once no order of it is unpaid.
-- One read: `sku` is in every loaded campaign's meta, so its absence means no meta at all.
local fence = redis.call('HMGET', KEYS[7], 'sku', 'retiring')
if not fence[1] or fence[2] then
  return {'retiring'}
end
local status = f[5]

if action == 'expire_order' then
  if status ~= 'pending_payment' then
    -- Redis moved on (paid, expired, …) and the store has not heard: journal it again.
    redis.call('SADD', KEYS[5], oid)
    return {'unchanged', record}
  elseif tonumber(now) < tonumber(f[8]) then
    return {'unchanged', record}
  end
  release(f, releasable(oid, f))
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
  release(f, releasable(oid, f))
  return {'cancelled', save(oid, f, 'cancelled')}
end

if action == 'pay' then
  local amount, payment_id = ARGV[4], ARGV[5]
  if not string.match(amount, '^%-?%d+$') then
    refuse('amount is not an integer')
  end
  local seen = redis.call('HGET', KEYS[6], payment_id)
  if seen then
    local first_oid, first_amount, first = string.match(seen, '^([^|]*)|([^|]*)|([^|]*)$')
    if not first_oid then
      corrupt('payment record of order ' .. oid)
    elseif first_oid ~= oid or first_amount ~= amount then
      -- Another payment under a known id: it is not this one, and decides nothing.
      return {'payment_id_reused', record}
    elseif first ~= 'paid' or status == 'paid' then
      return {'repeated', record, first}
    end
    -- It paid this order, yet the order is not paid now (Redis lost that change): decide it
    -- again below, so the answer and the record say what the order now is.
  end
  local reply, outcome
  if tonumber(f[2]) * tonumber(f[3]) ~= tonumber(amount) then
    reply, outcome = {'amount_mismatch', record}, 'amount_mismatch'
  elseif status == 'paid' or status == 'refund_required' then
    -- Another payment of an order already settled: this money goes back.
    reply, outcome = {'duplicate_payment', record}, 'refund_required'
  elseif status == 'pending_payment' and tonumber(now) < tonumber(f[8]) then
    journal_writable(oid)
    f[9] = now
    reply, outcome = {'paid', save(oid, f, 'paid')}, 'paid'
  else
    -- Too late: the order expired (or its deadline passed before the sweeper got to it) or was
    -- cancelled. Its units are, or now go, back on sale; the money must go back to the buyer.
    if status == 'pending_payment' then
      release(f, releasable(oid, f))
    else
      journal_writable(oid)
    end
    f[9] = now
    reply, outcome = {'refund_required', save(oid, f, 'refund_required')}, 'refund_required'
  end
  redis.call('HSET', KEYS[6], payment_id, oid .. '|' .. amount .. '|' .. outcome)
  return reply
end

return redis.error_reply('unknown action ' .. tostring(action))
