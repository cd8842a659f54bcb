-- revoke.lua: end one session of one user, at once, with every index entry of it.
-- KEYS[1] session hash   KEYS[2] its bucket's `t` index (names the bucket)
-- ARGV[1] now_ms  ARGV[2] user id  ARGV[3] events (lib.lua)
-- returns 1 when a live session of that user was revoked, else 0.
local now = tonumber(ARGV[1])
local random = random_in(KEYS[1])
local view = redis.call('HMGET', KEYS[1], unpack(VIEW))
if view[AT.u] ~= ARGV[2] then return 0 end

local bucket = bucket_of(KEYS[2])
events_from(ARGV[3])
local live = is_live(bucket, random, view, now)
local entry = entry_of(random, view[AT.c], view[AT.ip])
drop(bucket, entry)
if live then
  emit(bucket, EVENT.revoked, entry, ARGV[2], ACTOR, '', now)
elseif tonumber(view[AT.x]) <= now then
  emit(bucket, EVENT.expired, entry, ARGV[2], 'system', '', now)
end
sweep(bucket, now, 8)
if live then return 1 end
return 0
