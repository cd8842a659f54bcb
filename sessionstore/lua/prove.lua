-- prove.lua: take the challenge a verified DBSC refresh proof signed, and issue the next one.
-- KEYS[1] session hash   KEYS[2] its bucket's `t` index (names the bucket)
-- ARGV[1] now_ms  ARGV[2] secret hash  ARGV[3] the challenge the proof signed (its jti)
-- ARGV[4] the next challenge  ARGV[5] its expiry (ms)
-- returns 1 proven; 0 no live session with that secret; 2 the challenge is unknown, used or
--   expired; 4 the session is not bound. With 1 and 2 the next challenge is issued.
-- The caller verified the signature with the session's key (fixed once bound); this step makes
-- the challenge single-use and the session still live, at once.
local now = tonumber(ARGV[1])
local bucket = bucket_of(KEYS[2])
local view = redis.call('HMGET', KEYS[1], unpack(VIEW))
if not live_with(bucket, KEYS[1], view, ARGV[2], now) then return 0 end
if view[AT.b] ~= '1' then return 4 end
local taken = take_challenge(KEYS[1], 'f' .. ARGV[3], now)
keep_challenge(KEYS[1], 'f' .. ARGV[4], ARGV[5])
if taken then return 1 end
return 2
