-- set_stock.lua: change the stock of a live campaign explicitly, with its accounting.
--
-- Units already taken (held by unpaid orders or sold) stay taken: the new total must cover
-- them, and what is left for sale becomes new total - taken. One atomic step, so no
-- reservation is ever counted twice or lost while the stock changes.
--
-- A campaign split into buckets is changed in its bucket 0, by a delta ('delta' mode): each
-- bucket's `stock_total` is its own share, which transfers move, so only the change itself is
-- meaningful there, applied atomically to the share in force.
--
-- KEYS: 1 meta, 2 stock
-- ARGV: 1 the new stock total ('total' mode) or the change to this bucket's share ('delta'),
--       2 mode ('total' when absent)
-- Reply: {status, total before, taken, left for sale after}
--        status 1 applied, 0 refused (the new total is below what is taken), -1 not loaded,
--        -2 inconsistent (more left than the total)

local total = tonumber(redis.call('HGET', KEYS[1], 'stock_total'))
local left = tonumber(redis.call('GET', KEYS[2]))
if not total or not left then
  return {-1, 0, 0, 0}
end
local taken = total - left
if taken < 0 then
  -- More for sale than the total: something wrote behind the scripts' back. Change nothing.
  return {-2, total, taken, left}
end
local wanted = tonumber(ARGV[1])
if ARGV[2] == 'delta' then
  wanted = total + wanted
end
if wanted < taken then
  return {0, total, taken, left}
end
redis.call('HSET', KEYS[1], 'stock_total', wanted)
redis.call('SET', KEYS[2], wanted - taken)
return {1, total, taken, wanted - taken}
