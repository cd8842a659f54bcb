-- read.lua: an admin's view of one session, by id; never records activity.
-- KEYS[1] session hash   KEYS[2] its bucket's `t` index (names the bucket)
-- ARGV[1] now_ms
-- returns the session's VIEW values (secret hash blanked), or false.
local bucket = bucket_of(KEYS[2])
local view = redis.call('HMGET', KEYS[1], unpack(VIEW))
if not is_live(bucket, random_in(KEYS[1]), view, tonumber(ARGV[1])) then
  return false
end
view[AT.h] = ''
return view
