-- create.lua: store a new session and index it under its user, atomically.
-- KEYS[1] session hash   KEYS[2] user index zset (member -> expires_at ms)
--   Both share one {tenant:tag} hash tag. Sessions evicted by the per-user cap are named
--   from KEYS[2]'s own prefix, so they share that slot too.
-- ARGV[1] now_ms  ARGV[2] expires_at_ms  ARGV[3] member (the session id's random part)  ARGV[4] max sessions per user
-- ARGV[5] secret hash  ARGV[6..] field, value pairs of the session hash (codec.py)
-- returns {1, evicted members...} when created; {0} when this exact session already exists
--   (a retried create is a no-op); {-1} when the id is taken by another session.
local now = tonumber(ARGV[1])
local expires_at = ARGV[2]
local new_member = ARGV[3]
local cap = tonumber(ARGV[4])
local secret_hash = ARGV[5]
local session_prefix = string.sub(KEYS[2], 1, -2) .. 's:'

-- Never overwrite a live session.
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'h') == secret_hash then return {0} end
  return {-1}
end

redis.call('HSET', KEYS[1], 'h', secret_hash, unpack(ARGV, 6))
redis.call('PEXPIREAT', KEYS[1], expires_at)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], expires_at, new_member)

-- Over the cap: evict the least recently active of the others. A session is live only
-- while indexed, so ZREM revokes it; DEL frees its memory.
local result = {1}
local excess = redis.call('ZCARD', KEYS[2]) - cap
while excess > 0 do
  local oldest, oldest_active = nil, nil
  for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    if member ~= new_member then
      local active = tonumber(redis.call('HGET', session_prefix .. member, 'a') or 0)
      if oldest == nil or active < oldest_active then
        oldest, oldest_active = member, active
      end
    end
  end
  redis.call('ZREM', KEYS[2], oldest)
  redis.call('DEL', session_prefix .. oldest)
  result[#result + 1] = oldest
  excess = excess - 1
end

-- The index lives exactly as long as its longest-lived session.
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], last[2])
return result
