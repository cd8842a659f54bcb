-- list_user.lua: every live session of one user, in one round trip.
-- KEYS[1] user index   KEYS[2] the same bucket's `t` index (names the bucket)
-- ARGV[1] now_ms  ARGV[2] events (lib.lua)
-- returns {random, VIEW values, random, VIEW values, ...}; secret hashes blanked.
local now = tonumber(ARGV[1])
local bucket = bucket_of(KEYS[2])
events_from(ARGV[2])

drop_expired(bucket, KEYS[1], now)
sweep(bucket, now, 8)
local result = {}
for _, random in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local view = redis.call('HMGET', bucket .. 's:' .. random, unpack(VIEW))
  if view[AT.h] and tonumber(view[AT.x]) > now then
    view[AT.h] = ''
    result[#result + 1] = random
    result[#result + 1] = view
  end
end
return result
