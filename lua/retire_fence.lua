-- retire_fence.lua: the fence a retirement puts on one bucket of a campaign (ARCHITECTURE.md §9).
--
-- While a bucket's meta has the field `retiring`, reserve.lua sells nothing from it and
-- lifecycle.lua changes none of its orders, so what a retirement checked stays true until its
-- keys are gone. On bucket 0 the field is also the retirement's lease: "<holder>|<ms>", taken
-- by one gateway at a time; a holder silent for longer than the stale age (it died mid-pass)
-- can be replaced, and whoever takes it over checks everything again before going on.
--
-- KEYS: 1 meta (of one bucket)
-- ARGV: 1 mode, 2 holder, 3 now_ms, 4 stale_ms
--   take:    -> {1, ''} taken (or renewed), {0, holder|ms} held by another, {-1, ''} no meta
--   release: -> 1 released, 0 not ours (left as it is)

local mode, holder, now, stale = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])

if mode == 'take' then
  if redis.call('EXISTS', KEYS[1]) == 0 then
    return {-1, ''}
  end
  local held = redis.call('HGET', KEYS[1], 'retiring')
  if held then
    local who, since = string.match(held, '^(.*)|(%d+)$')
    if who ~= holder and since and now - tonumber(since) < stale then
      return {0, held}
    end
  end
  redis.call('HSET', KEYS[1], 'retiring', holder .. '|' .. now)
  return {1, ''}
end

if mode == 'release' then
  local held = redis.call('HGET', KEYS[1], 'retiring')
  if held and string.match(held, '^(.*)|%d+$') == holder then
    redis.call('HDEL', KEYS[1], 'retiring')
    return {1}
  end
  return {0}
end

return redis.error_reply('unknown mode ' .. tostring(mode))
