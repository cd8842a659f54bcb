-- update.lua: set fields of a live session (e.g. MFA verified after a step-up).
-- KEYS[1] session hash   KEYS[2] its bucket's `t` index (names the bucket)
-- ARGV[1] now_ms  ARGV[2..] field, value pairs
-- returns 1 when the session is live and was updated, else 0.
-- Guarded by liveness: HSET on a missing key would recreate it with no TTL.
local bucket = bucket_of(KEYS[2])
local view = redis.call('HMGET', KEYS[1], unpack(VIEW))
if not is_live(bucket, random_in(KEYS[1]), view, tonumber(ARGV[1])) then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
