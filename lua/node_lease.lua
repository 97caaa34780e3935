-- A gateway's lease on its node id: order ids carry the node id, so two live gateways with
-- the same one could mint the same order id. With the lease goes the node id's mark: no id of
-- this node was (or will be, until the next renewal) minted at a millisecond above it, so a
-- gateway restarted on the node id, even with its clock stepped back, never mints below it.
--
-- KEYS[1]  fg:node:<id>                       the lease: holder string, expiring
-- KEYS[2]  fg:{fg:node:<id>}:minted_until     the mark, Unix ms, never expiring (same slot)
-- ARGV[1]  mode: "claim" (take or renew) or "release"
-- ARGV[2]  this gateway's holder string: host/listen address/pid/start time
-- ARGV[3]  lease length in ms (claim)
-- ARGV[4]  prefix of holders this gateway may take over ("" for none): a holder on the same
--          host and listen address is a previous life of this gateway, since the address was
--          free for this one to bind
-- ARGV[5]  claim: how far ids may be minted before the next renewal (now + a margin, Unix ms),
--          recorded if above the mark; release: the last millisecond this holder minted in (or
--          now), recorded as the mark, since it mints no more
--
-- claim returns {1, '', 0, mark before, mark after} when the lease is now ours, else
-- {0, holder, ms left, mark, mark}; release returns 1 when our lease was deleted, 0 when it was
-- not ours. Errors are raised before any write.
local mark = redis.call('GET', KEYS[2])
if mark then
  mark = tonumber(mark)
  if not mark then
    return redis.error_reply('node id mark ' .. KEYS[2] .. ' is not a number')
  end
else
  mark = 0
end
local asked = tonumber(ARGV[5])
if not asked then
  return redis.error_reply('node lease mark argument is not a number')
end
local current = redis.call('GET', KEYS[1])
if ARGV[1] == 'release' then
  if current == ARGV[2] then
    redis.call('SET', KEYS[2], string.format('%d', asked))
    return redis.call('DEL', KEYS[1])
  end
  return 0
end
if current == false or current == ARGV[2]
    or (ARGV[4] ~= '' and string.sub(current, 1, #ARGV[4]) == ARGV[4]) then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  local after = mark
  if asked > mark then
    after = asked
    redis.call('SET', KEYS[2], string.format('%d', asked))
  end
  return {1, '', 0, string.format('%d', mark), string.format('%d', after)}
end
local mark_text = string.format('%d', mark)
return {0, current, redis.call('PTTL', KEYS[1]), mark_text, mark_text}
