-- set_stock.lua: change the stock of a live campaign explicitly, with its accounting.
--
-- Units already taken (held by unpaid orders or sold) stay taken: the new total must cover
-- them, and what is left for sale becomes new total - taken. One atomic step, so no
-- reservation is ever counted twice or lost while the stock changes.
--
-- A campaign split into buckets is changed in its bucket 0 ('campaign' mode): each bucket's
-- `stock_total` is its own share, which transfers move; bucket 0 also keeps the campaign's
-- total (`campaign_total`, written at opening and rebuild). The change (new total - that) is
-- applied to bucket 0's share and the new total recorded in the same step, so a repeated
-- request changes nothing more.
--
-- KEYS: 1 meta, 2 stock
-- ARGV: 1 the new stock total, 2 mode ('total' when absent, or 'campaign')
-- Reply: {status, total before, taken, left for sale after}; in 'campaign' mode "taken" is
--        what the total cannot go below (all but bucket 0's units for sale), and "left" bucket
--        0's units for sale
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
if ARGV[2] == 'campaign' then
  local campaign = tonumber(redis.call('HGET', KEYS[1], 'campaign_total') or '')
  if not campaign then
    return {-1, 0, 0, 0}
  end
  local share = total + wanted - campaign
  if share < taken then
    return {0, campaign, campaign - left, left}
  end
  redis.call('HSET', KEYS[1], 'stock_total', share, 'campaign_total', ARGV[1])
  redis.call('SET', KEYS[2], share - taken)
  return {1, campaign, campaign - left, share - taken}
end
if wanted < taken then
  return {0, total, taken, left}
end
redis.call('HSET', KEYS[1], 'stock_total', wanted)
redis.call('SET', KEYS[2], wanted - taken)
return {1, total, taken, wanted - taken}
