-- load_campaign.lua: put a campaign's settings into Redis without ever resetting its stock.
--
-- A gateway loads every configured campaign at start. Many gateways, restarts and reloads all run
-- this, so stock is set only if absent: changing the stock of a live campaign is an explicit admin
-- action, never a side effect of (re)loading a config file.
--
-- Creating the stock is a separate mode. A campaign that Redis does not hold may have sold before
-- (Redis lost its data): only a caller holding an opening permit, which the store's ledger gives
-- once per campaign, asks for 'open'. In 'settings' mode a campaign absent from Redis is left
-- absent: nothing at all is written, so no failure path can bring its stock back.
--
-- Even with a permit, a campaign whose orders or buyers Redis still holds (its stock key alone
-- was lost) is not created afresh: its buyers would get a new quota and its units sell twice.
--
-- A campaign split into buckets (ARCHITECTURE.md §7) runs this once per bucket, on that bucket's
-- keys, with the bucket's share as its stock. The number of buckets is fixed when the stock is
-- created and never changed by a later load: a user's home bucket, where their per-user limit is
-- counted, must not move. A campaign loaded before buckets existed has no `buckets` field and
-- reads as one bucket.
--
-- KEYS: 1 meta, 2 stock, 3 orders, 4 buyers (of one bucket)
-- ARGV: 1 sku, 2 unit_price_cents, 3 per_user_limit, 4 pay_timeout_ms, 5 start_ms, 6 end_ms,
--       7 stock (this bucket's share), 8 mode ('open' or 'settings'), 9 buckets, 10 this bucket,
--       11 the campaign's whole stock (kept in bucket 0 as `campaign_total`)
-- Reply: {created (1 when this call set the stock, -1 when absent and left so), stock_total in
--         force (this bucket's share), units left, buckets in force}

local mode = ARGV[8]
if mode ~= 'open' and mode ~= 'settings' then
  return redis.error_reply('load_campaign: unknown mode ' .. tostring(mode))
end
if redis.call('EXISTS', KEYS[2]) == 0
    and (mode == 'settings' or redis.call('EXISTS', KEYS[3], KEYS[4]) > 0) then
  return {-1, '0', '0', '0'}
end
local created = redis.call('SETNX', KEYS[2], ARGV[7])
if created == 1 then
  redis.call('HSET', KEYS[1], 'stock_total', ARGV[7], 'buckets', ARGV[9], 'bucket', ARGV[10])
  if ARGV[10] == '0' then
    redis.call('HSET', KEYS[1], 'campaign_total', ARGV[11])
  end
end
redis.call('HSET', KEYS[1],
  'sku', ARGV[1],
  'unit_price_cents', ARGV[2],
  'per_user_limit', ARGV[3],
  'pay_timeout_ms', ARGV[4],
  'start_ms', ARGV[5],
  'end_ms', ARGV[6])
local total = redis.call('HGET', KEYS[1], 'stock_total') or ARGV[7]
local buckets = redis.call('HGET', KEYS[1], 'buckets') or '1'
return {created, total, redis.call('GET', KEYS[2]), buckets}
