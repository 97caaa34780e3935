-- ack.lua: drop orders from the journal once the store holds their current state.
--
-- An order's journal entry must go only if the state the store now holds is the latest one: a
-- later transition (payment, expiry) re-journals the order with a higher version, and acking the
-- older write must not hide it from the reconciler. Two Redis calls per batch, whatever its size.
--
-- KEYS: 1 orders, 2 journal (a set of order ids)
-- ARGV: (order_id, version) pairs: the versions just written to the store (at most a few
--       thousand per call: Lua's unpack has a stack limit).
-- Reply: how many entries were removed.

local ids, versions = {}, {}
for i = 1, #ARGV, 2 do
  ids[#ids + 1] = ARGV[i]
  versions[#versions + 1] = ARGV[i + 1]
end
if #ids == 0 then
  return 0
end
local records = redis.call('HMGET', KEYS[1], unpack(ids))
local done = {}
for i = 1, #ids do
  local record = records[i]
  local version = record and string.match(record, '^[^|]*|[^|]*|[^|]*|[^|]*|[^|]*|([^|]*)|')
  -- An entry whose record is gone can never be persisted: it goes too.
  if not record or version == versions[i] then
    done[#done + 1] = ids[i]
  end
end
if #done == 0 then
  return 0
end
return redis.call('SREM', KEYS[2], unpack(done))
