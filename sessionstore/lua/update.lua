-- update.lua: set fields of a live session (e.g. MFA verified after a step-up).
-- KEYS[1] session hash   KEYS[2] its bucket's `t` index (names the bucket)
-- ARGV[1] now_ms  ARGV[2] events (lib.lua)  ARGV[3..] field, value pairs; setting m to 1 is
--   recorded as mfa_verified
-- returns 1 when the session is live and was updated, else 0.
-- Guarded by liveness: HSET on a missing key would recreate it with no TTL.
local bucket = bucket_of(KEYS[2])
events_from(ARGV[2])
local view = redis.call('HMGET', KEYS[1], unpack(VIEW))
if not is_live(bucket, random_in(KEYS[1]), view, tonumber(ARGV[1])) then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
announce(KEYS[1])
for at = 3, #ARGV - 1, 2 do
  if ARGV[at] == 'm' and ARGV[at + 1] == '1' and view[AT.m] ~= '1' then
    emit(bucket, EVENT.mfa_verified, entry_of(random_in(KEYS[1]), view[AT.c], view[AT.ip]), view[AT.u], ACTOR, '', ARGV[1])
  end
end
return 1
