-- challenge.lua: issue a DBSC challenge to a live session (binding.py).
-- KEYS[1] session hash   KEYS[2] its bucket's `t` index (names the bucket)
-- ARGV[1] now_ms  ARGV[2] secret hash  ARGV[3] kind: `r` registration, `f` refresh
-- ARGV[4] the challenge  ARGV[5] its expiry (ms)
-- returns 1 when issued; 0 no live session with that secret; 2 a refresh challenge for a session
--   that is not bound, or a registration challenge for one that is.
local bucket = bucket_of(KEYS[2])
local view = redis.call('HMGET', KEYS[1], unpack(VIEW))
if not live_with(bucket, KEYS[1], view, ARGV[2], tonumber(ARGV[1])) then return 0 end
if (view[AT.b] == '1') ~= (ARGV[3] == 'f') then return 2 end
keep_challenge(KEYS[1], ARGV[3] .. ARGV[4], ARGV[5])
return 1
