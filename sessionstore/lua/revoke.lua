-- revoke.lua: end one session of one user, at once, with every index entry of it.
-- KEYS[1] session hash   KEYS[2] its bucket's `t` index (names the bucket)
-- ARGV[1] now_ms  ARGV[2] user id
-- returns 1 when a live session of that user was revoked, else 0.
local now = tonumber(ARGV[1])
local random = random_in(KEYS[1])
local view = redis.call('HMGET', KEYS[1], unpack(VIEW))
if view[AT.u] ~= ARGV[2] then return 0 end

local bucket = bucket_of(KEYS[2])
local live = is_live(bucket, random, view, now)
drop(bucket, entry_of(random, view[AT.c], view[AT.ip]))
sweep(bucket, now, 8)
if live then return 1 end
return 0
