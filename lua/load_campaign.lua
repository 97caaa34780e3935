-- load_campaign.lua: put a campaign's settings into Redis without ever resetting its stock.
--
-- A gateway loads every configured campaign at start. Many gateways, restarts and reloads all run
-- this, so stock is set only if absent: changing the stock of a live campaign is an explicit admin
-- action, never a side effect of (re)loading a config file.
--
-- KEYS: 1 meta, 2 stock
-- ARGV: 1 sku, 2 unit_price_cents, 3 per_user_limit, 4 pay_timeout_ms, 5 start_ms, 6 end_ms,
--       7 stock_total
-- Reply: {created (1 when this call set the stock), stock_total in force, units left}

local created = redis.call('SETNX', KEYS[2], ARGV[7])
if created == 1 then
  redis.call('HSET', KEYS[1], 'stock_total', ARGV[7])
end
redis.call('HSET', KEYS[1],
  'sku', ARGV[1],
  'unit_price_cents', ARGV[2],
  'per_user_limit', ARGV[3],
  'pay_timeout_ms', ARGV[4],
  'start_ms', ARGV[5],
  'end_ms', ARGV[6])
local total = redis.call('HGET', KEYS[1], 'stock_total') or ARGV[7]
return {created, total, redis.call('GET', KEYS[2])}
