-- list_user.lua: every live session of one user, in one round trip.
-- KEYS[1] user index zset. The session hashes are named from KEYS[1]'s own prefix, so
--   they share its {tenant:tag} slot.
-- ARGV[1] now_ms
-- returns {member, flat hash, member, flat hash, ...}; secret hashes blanked.
local now = tonumber(ARGV[1])
local session_prefix = string.sub(KEYS[1], 1, -2) .. 's:'

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local result = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local flat = redis.call('HGETALL', session_prefix .. member)
  -- A missing hash is skipped, not unindexed: it may sit on another node mid-resharding.
  if #flat > 0 then
    for i = 1, #flat, 2 do
      if flat[i] == 'h' then flat[i + 1] = '' end
    end
    result[#result + 1] = member
    result[#result + 1] = flat
  end
end
return result
