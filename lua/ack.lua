-- ack.lua: drop orders from the journal once the store holds their current state.
--
-- An order's journal entry must go only if the state the store now holds is the latest one: a
-- later transition (payment, expiry) re-journals the order with a higher version, and acking the
-- older write must not hide it from the reconciler.
--
-- KEYS: 1 orders, 2 journal
-- ARGV: (order_id, version) pairs: the versions just written to the store.
-- Reply: how many entries were removed.

local removed = 0
for i = 1, #ARGV, 2 do
  local record = redis.call('HGET', KEYS[1], ARGV[i])
  local version = record and string.match(record, '^[^|]*|[^|]*|[^|]*|[^|]*|[^|]*|([^|]*)|')
  if not record or version == ARGV[i + 1] then
    removed = removed + redis.call('ZREM', KEYS[2], ARGV[i])
  end
end
return removed
