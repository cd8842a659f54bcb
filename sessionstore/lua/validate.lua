-- validate.lua: check a token's session and record activity, in one round trip.
-- KEYS[1] session hash   KEYS[2] user index zset   (one {tenant:tag} hash tag)
-- ARGV[1] now_ms  ARGV[2] member (the session id's random part)  ARGV[3] secret hash  ARGV[4] touch interval ms
-- ARGV[5] idle timeout ms (0: none)
-- returns the session hash as a flat field, value list (without the secret hash), or false.
-- A session is live only while it is in its user's index: revoke, revoke_all and the cap
-- remove it there, so a concurrent touch can never bring a revoked session back.
local now = tonumber(ARGV[1])
local member = ARGV[2]
local interval = tonumber(ARGV[4])
local idle = tonumber(ARGV[5])

local flat = redis.call('HGETALL', KEYS[1])
if #flat == 0 then return false end

local fields, index = {}, {}
for i = 1, #flat, 2 do
  fields[flat[i]] = flat[i + 1]
  index[flat[i]] = i + 1
end

-- Compare every byte, whatever the first difference, so timing reveals nothing.
local given, stored = ARGV[3], fields['h'] or ''
if #given ~= #stored then return false end
local differ = 0
for i = 1, #given do
  if string.byte(given, i) ~= string.byte(stored, i) then differ = differ + 1 end
end
if differ ~= 0 then return false end

if not redis.call('ZSCORE', KEYS[2], member) or tonumber(fields['x']) <= now then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], member)
  return false
end

if now - tonumber(fields['a']) >= interval then
  local expires_at = tonumber(fields['X'] or fields['x'])
  if idle > 0 then expires_at = math.min(expires_at, now + idle) end
  redis.call('HSET', KEYS[1], 'a', ARGV[1], 'x', expires_at)
  redis.call('PEXPIREAT', KEYS[1], expires_at)
  redis.call('ZADD', KEYS[2], 'XX', expires_at, member)
  redis.call('PEXPIREAT', KEYS[2], expires_at, 'GT')
  flat[index['a']] = ARGV[1]
  flat[index['x']] = tostring(expires_at)
end

flat[index['h']] = ''
return flat
