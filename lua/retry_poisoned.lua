-- retry_poisoned.lua: put an order that was set aside (refused by the store) back in the
-- journal, once an operator has fixed the cause, so the reconciler writes it again.
--
-- KEYS: 1 poisoned, 2 journal
-- ARGV: 1 order id
-- Reply: 1 when it was set aside and is journaled again, 0 when it was not set aside.

-- A journal of the wrong type fails here, before the HDEL: the order is never dropped from
-- the set-aside list without reaching the journal.
redis.call('SISMEMBER', KEYS[2], ARGV[1])
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  redis.call('SADD', KEYS[2], ARGV[1])
  return 1
end
return 0
