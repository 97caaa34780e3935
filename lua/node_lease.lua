-- A gateway's lease on its node id: order ids carry the node id, so two live gateways with
-- the same one could mint the same order id.
--
-- KEYS[1]  fg:node:<id>
-- ARGV[1]  mode: "claim" (take or renew) or "release"
-- ARGV[2]  this gateway's holder string: host/listen address/pid/start time
-- ARGV[3]  lease length in ms (claim)
-- ARGV[4]  prefix of holders this gateway may take over ("" for none): a holder on the same
--          host and listen address is a previous life of this gateway, since the address was
--          free for this one to bind
--
-- claim returns {1, '', 0} when the lease is now ours, else {0, holder, ms left};
-- release returns 1 when our lease was deleted, 0 when it was not ours.
local current = redis.call('GET', KEYS[1])
if ARGV[1] == 'release' then
  if current == ARGV[2] then
    return redis.call('DEL', KEYS[1])
  end
  return 0
end
if current == false or current == ARGV[2]
    or (ARGV[4] ~= '' and string.sub(current, 1, #ARGV[4]) == ARGV[4]) then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return {1, '', 0}
end
return {0, current, redis.call('PTTL', KEYS[1])}
