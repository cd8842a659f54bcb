-- list_user.lua: every live session of one user, in one round trip.
-- KEYS[1] user index zset. The session hashes are named from KEYS[1]'s own prefix, so
--   they share its {tenant:tag} slot.
-- ARGV[1] now_ms
-- returns {member, VIEW values, member, VIEW values, ...}; secret hashes blanked.
local VIEW = {'h', 'x', 'a', 'X', 'u', 'ip', 'am', 'm', 'dt', 'do', 'db', 'c', 'lc', 'lk',
  'ua0', 'ua1', 'ua2', 'ua3', 'ua4', 'ua5', 'ua6', 'ua7', 'ua8', 'ua9', 'ua10', 'ua11', 'ua12',
  'ua13', 'ua14', 'ua15'}  -- codec.VIEW
local now = tonumber(ARGV[1])
local session_prefix = string.sub(KEYS[1], 1, -2) .. 's:'

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local result = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local view = redis.call('HMGET', session_prefix .. member, unpack(VIEW))
  -- A missing hash is skipped, not unindexed: it may sit on another node mid-resharding.
  if view[1] then
    view[1] = ''
    result[#result + 1] = member
    result[#result + 1] = view
  end
end
return result
