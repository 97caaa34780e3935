-- set_aside.lua: take an order the store refuses for good out of the journal, with the reason.
--
-- Only the state the store refused goes: if a later transition (a payment, an expiry) has
-- re-journaled the order with a higher version since, that newer state stays journaled.
--
-- KEYS: 1 orders, 2 journal, 3 poisoned (hash: order id -> reason)
-- ARGV: 1 order id, 2 the refused version, 3 the reason
-- Reply: 1 when set aside, 0 when a newer state was left journaled.
-- Errors (a key of the wrong type) are raised before the first write.

local record = redis.call('HGET', KEYS[1], ARGV[1])
local version = record and string.match(record, '^[^|]*|[^|]*|[^|]*|[^|]*|[^|]*|([^|]*)|')
if record and version ~= ARGV[2] then
  return 0
end
-- A journal of the wrong type fails here, before the first write (not after the HSET).
redis.call('SISMEMBER', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
