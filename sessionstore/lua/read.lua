-- read.lua: an admin's view of one session, by id; never records activity.
-- KEYS[1] session hash   KEYS[2] user index zset   (one {tenant:tag} hash tag)
-- ARGV[1] now_ms  ARGV[2] member (the session id's random part)
-- returns the session hash as a flat field, value list (without the secret hash), or false.
local now = tonumber(ARGV[1])
if not redis.call('ZSCORE', KEYS[2], ARGV[2]) then return false end
local flat = redis.call('HGETALL', KEYS[1])
for i = 1, #flat, 2 do
  if flat[i] == 'x' and tonumber(flat[i + 1]) <= now then return false end
  if flat[i] == 'h' then flat[i + 1] = '' end
end
if #flat == 0 then return false end
return flat
