-- update.lua: set fields of a live session (e.g. MFA verified after a step-up).
-- KEYS[1] session hash   KEYS[2] user index zset   (one {tenant:tag} hash tag)
-- ARGV[1] now_ms  ARGV[2] member (the session id's random part)  ARGV[3..] field, value pairs
-- returns 1 when the session is live and was updated, else 0.
-- Guarded by the index and EXISTS: HSET on a missing key would recreate it with no TTL.
local now = tonumber(ARGV[1])
local score = redis.call('ZSCORE', KEYS[2], ARGV[2])
if not score or tonumber(score) <= now or redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
return 1
