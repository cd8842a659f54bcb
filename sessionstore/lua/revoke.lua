-- revoke.lua: end one session of one user, at once.
-- KEYS[1] session hash   KEYS[2] user index zset   (one {tenant:tag} hash tag)
-- ARGV[1] now_ms  ARGV[2] member (the session id's random part)  ARGV[3] user id
-- returns {1, ip address} when a live session of that user was revoked, else {0}.
local now = tonumber(ARGV[1])
local member = ARGV[2]
local owner, ip, expires_at = unpack(redis.call('HMGET', KEYS[1], 'u', 'ip', 'x'))
if owner ~= ARGV[3] then return {0} end

local indexed = redis.call('ZREM', KEYS[2], member)
redis.call('DEL', KEYS[1])
if indexed == 1 and tonumber(expires_at) > now then return {1, ip} end
return {0}
