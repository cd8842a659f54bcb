-- create.lua: store a new session and every index entry of it, atomically.
-- KEYS[1] session hash  KEYS[2] user index  KEYS[3] bucket `t`  KEYS[4] bucket `i`
-- KEYS[5] bucket `x`   (all of one bucket; sessions evicted by the cap are named from its prefix)
-- ARGV[1] now_ms  ARGV[2] expires_at_ms  ARGV[3] absolute expiry ms  ARGV[4] max sessions per
-- user  ARGV[5] secret hash  ARGV[6] 1 to track idle expiry in `x`  ARGV[7] events (lib.lua)
-- ARGV[8..] field, value pairs of the session hash (codec.py)
-- returns {1, sessions evicted by the cap} when created; {0} when this exact session already
--   exists (a retried create is a no-op); {-1} when the id is taken by another session.
local now = tonumber(ARGV[1])
local expires_at = ARGV[2]
local absolute = ARGV[3]
local random = random_in(KEYS[1])
local cap = tonumber(ARGV[4])
local bucket = bucket_of(KEYS[3])
events_from(ARGV[7])

-- Never overwrite a live session.
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'h') == ARGV[5] then return {0} end
  return {-1}
end

sweep(bucket, now, 8)
redis.call('HSET', KEYS[1], 'h', ARGV[5], unpack(ARGV, 8))
redis.call('PEXPIREAT', KEYS[1], expires_at + GRACE)
-- Entries are made from what the hash holds, here as everywhere else.
local entry = entry_of(random, unpack(redis.call('HMGET', KEYS[1], 'c', 'ip')))
index_add(KEYS[3], entry, absolute + GRACE)
index_add(KEYS[4], ip_entry(entry), absolute + GRACE)
if ARGV[6] == '1' then redis.call('ZADD', KEYS[5], expires_at, entry) end
emit(bucket, EVENT.created, entry, redis.call('HGET', KEYS[1], 'u'), ACTOR, '', now)
drop_expired(bucket, KEYS[2], now)
redis.call('ZADD', KEYS[2], expires_at, random)

-- Over the cap: evict the sessions that would end soonest (with an idle timeout, the least
-- recently active; without, the oldest), with all their entries: O(log n) each.
local evicted = 0
local excess = redis.call('ZCARD', KEYS[2]) - cap
if excess > 0 then
  for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, excess)) do
    if member ~= random and evicted < excess then
      local created, ip = unpack(redis.call('HMGET', bucket .. 's:' .. member, 'c', 'ip'))
      if created then
        local evicted_entry = entry_of(member, created, ip)
        emit(bucket, EVENT.evicted, evicted_entry, drop(bucket, evicted_entry), 'system', REASON.cap, now)
      end
      redis.call('ZREM', KEYS[2], member)
      evicted = evicted + 1
    end
  end
end

-- Every key lives exactly as long as its longest-lived session (index_add sees to its chunks).
for _, key in ipairs({KEYS[2], KEYS[5]}) do
  if redis.call('EXISTS', key) == 1 then keep_until(key, absolute + GRACE) end
end
return {1, evicted}
