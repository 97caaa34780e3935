-- transfer.lua: moving stock between two buckets of one campaign (ARCHITECTURE.md §7).
--
-- Buckets live in different slots, so no script can touch two of them: a transfer is two
-- atomic steps and a clean-up, each on one bucket, each safe to repeat.
--
--   'out'  on the donor:  take `want` units or more (up to half its stock), or what it has
--                         if that is less, from its stock and record the transfer
--                         (id → units, home, time) in its transfers hash. The id is minted
--                         here: bucket, time and a counter in the donor's meta.
--   'in'   on the home:   credit the units once per transfer id (the credited set remembers
--                         every id for as long as the campaign lives), so a repair that races
--                         the normal path never credits twice.
--   'done' on the donor:  forget the recorded transfer, once the home has been credited.
--
-- Between 'out' and 'done' the units are pending: counted in neither bucket's stock, but in
-- the donor's transfers hash. Conservation: Σ stock + Σ pending + units taken = total. Each
-- bucket's meta `stock_total` is its own share of the total and moves with the units (down on
-- 'out', up on 'in'), so inside one bucket taken = stock_total - stock still holds.
--
--   'census'   read-only, one bucket at one moment: what a census of the campaign adds up.
--   'credited' read-only: which of the given transfer ids this bucket has been credited for.
--
-- Pure function of keys and arguments: time comes in as an argument.
--
-- KEYS: 1 meta, 2 stock, 3 transfers, 4 credited (of the bucket named by the mode)
-- ARGV 'out':  1 'out', 2 want, 3 home bucket, 4 now_ms
--      reply:  {units given (0: none), transfer id or '', transfers still pending here}
-- ARGV 'in':   1 'in', 2 transfer id, 3 units
--      reply:  {1 credited now | 0 credited before | -1 bucket not loaded, stock after}
-- ARGV 'done': 1 'done', 2 transfer id
--      reply:  {1 forgotten | 0 unknown}
-- ARGV 'census': 1 'census'
--      reply:  {loaded 1|0, stock, share, transfers made here (counter), credits received,
--               then transfer id, recorded value, … for every pending transfer}
-- ARGV 'credited': 1 'credited', 2.. transfer ids
--      reply:  {1|0 per id}

local mode = ARGV[1]

local function stock_of()
  local text = redis.call('GET', KEYS[2])
  if not text then
    return nil
  end
  if not string.match(text, '^%-?%d+$') then
    error({err = 'FGCORRUPT stock is not an integer'})
  end
  return tonumber(text)
end

-- A bucket without meta is not on sale (never opened, lost, or fenced by a rebuild): it
-- gives nothing and takes no credit.
local on_sale = redis.call('EXISTS', KEYS[1]) == 1

if mode == 'out' then
  local want = tonumber(ARGV[2])
  local pending = redis.call('HLEN', KEYS[3])
  local stock = stock_of()
  if not on_sale or not stock or not want or want < 1 or stock <= 0 then
    return {0, '', pending}
  end
  -- At least what the home needs, and half the donor's stock if that is more: a dry home
  -- that keeps selling borrows seldom, and stock drifts to where the buyers are.
  local units = math.min(stock, math.max(want, math.floor(stock / 2)))
  local seq = redis.call('HINCRBY', KEYS[1], 'transfer_seq', 1)
  local bucket = redis.call('HGET', KEYS[1], 'bucket') or '0'
  -- The time keeps an id unique even if this bucket lost its meta (and counter) since: a home
  -- remembers every id it was credited for, and must never take a new transfer for an old one.
  local id = bucket .. '.' .. ARGV[4] .. '.' .. seq
  redis.call('DECRBY', KEYS[2], units)
  redis.call('HINCRBY', KEYS[1], 'stock_total', -units)
  redis.call('HSET', KEYS[3], id, units .. '|' .. ARGV[3] .. '|' .. ARGV[4])
  return {units, id, pending + 1}
elseif mode == 'in' then
  local units = tonumber(ARGV[3])
  local stock = stock_of()
  if not on_sale or not stock then
    return {-1, 0}
  end
  if not units or units < 1 then
    return redis.error_reply('transfer: bad units ' .. tostring(ARGV[3]))
  end
  if redis.call('SADD', KEYS[4], ARGV[2]) == 0 then
    return {0, stock}
  end
  redis.call('HINCRBY', KEYS[1], 'stock_total', units)
  return {1, redis.call('INCRBY', KEYS[2], units)}
elseif mode == 'done' then
  return {redis.call('HDEL', KEYS[3], ARGV[2])}
elseif mode == 'census' then
  local stock = stock_of()
  local reply = {
    stock and 1 or 0,
    stock or 0,
    tonumber(redis.call('HGET', KEYS[1], 'stock_total') or '0'),
    tonumber(redis.call('HGET', KEYS[1], 'transfer_seq') or '0'),
    redis.call('SCARD', KEYS[4]),
  }
  local pending = redis.call('HGETALL', KEYS[3])
  for i = 1, #pending do
    reply[#reply + 1] = pending[i]
  end
  return reply
elseif mode == 'credited' then
  if #ARGV < 2 then
    return {}
  end
  return redis.call('SMISMEMBER', KEYS[4], unpack(ARGV, 2))
end
return redis.error_reply('transfer: unknown mode ' .. tostring(mode))
