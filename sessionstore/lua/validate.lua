-- validate.lua: check a token's session and record activity, in one round trip.
-- KEYS[1] session hash   KEYS[2] its bucket's `t` index (names the bucket)
-- ARGV[1] now_ms  ARGV[2] secret hash  ARGV[3] touch interval ms  ARGV[4] idle timeout ms (0: none)
-- ARGV[5] events (lib.lua): a session found ended is recorded as expired; a touch is no event
-- returns the session's VIEW values (secret hash blanked), or why not: 0 no such session,
--   1 another secret, 2 expired, 3 no longer in its user's index (revoked or evicted).
-- A session is live only while it is in its user's index: revoke, revoke_all and the cap
-- remove it there in the same step as everything else, so no touch can bring it back.
local now = tonumber(ARGV[1])
local random = random_in(KEYS[1])
local interval = tonumber(ARGV[3])
local idle = tonumber(ARGV[4])

local view = redis.call('HMGET', KEYS[1], unpack(VIEW))
local stored = view[AT.h]
if not stored then return 0 end

-- Both sides are SHA-256 digests of secrets, never secrets: whatever the time of `==` could
-- tell of where two digests differ, it leaks nothing of the 190-bit secret, since choosing a
-- secret whose digest starts a certain way is a preimage search. (Lua interns strings, so
-- `==` compares two references anyway.)
if ARGV[2] ~= stored then return 1 end

local bucket = bucket_of(KEYS[2])
events_from(ARGV[5])
if not is_live(bucket, random, view, now) then
  local entry = entry_of(random, view[AT.c], view[AT.ip])
  local owner = drop(bucket, entry)
  if tonumber(view[AT.x]) <= now then
    emit(bucket, EVENT.expired, entry, owner, 'system', '', now)
    return 2
  end
  return 3
end

-- The reply is the view with the secret hash blanked and any new activity filled in.
local reply = view
if now - tonumber(view[AT.a]) >= interval then
  local expires_at = tonumber(view[AT.X] or view[AT.x])
  if idle > 0 then expires_at = math.min(expires_at, now + idle) end
  -- Recording activity is a write: at maxmemory Redis refuses it, and the session must still
  -- validate, so a refused touch is skipped (pcall) rather than failing the script.
  local touched = redis.pcall('HSET', KEYS[1], 'a', ARGV[1], 'x', expires_at)
  if type(touched) ~= 'table' or not touched.err then
    redis.call('PEXPIREAT', KEYS[1], expires_at + GRACE)
    redis.call('ZADD', bucket .. 'u:' .. view[AT.u], 'XX', expires_at, random)
    if idle > 0 then
      redis.call('ZADD', bucket .. 'x', 'XX', expires_at, entry_of(random, view[AT.c], view[AT.ip]))
    end
    -- No announce: a cached copy elsewhere only shows older activity and an earlier expiry,
    -- and a near cache stops answering for it once its own touch falls due (nearcache.py).
    reply[AT.x] = tostring(expires_at)
    reply[AT.a] = ARGV[1]
  end
end

reply[AT.h] = ''
return reply
