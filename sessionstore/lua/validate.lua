-- validate.lua: check a token's session and record activity, in one round trip.
-- KEYS[1] session hash   KEYS[2] user index zset   (one {tenant:tag} hash tag)
-- ARGV[1] now_ms  ARGV[2] member (the session id's random part)  ARGV[3] secret hash
-- ARGV[4] touch interval ms  ARGV[5] idle timeout ms (0: none)
-- returns the session's VIEW values (secret hash blanked), or false.
-- A session is live only while it is in its user's index: revoke, revoke_all and the cap
-- remove it there, so a concurrent touch can never bring a revoked session back.
local VIEW = {'h', 'x', 'a', 'X', 'u', 'ip', 'am', 'm', 'dt', 'do', 'db', 'c', 'lc', 'lk',
  'ua0', 'ua1', 'ua2', 'ua3', 'ua4', 'ua5', 'ua6', 'ua7', 'ua8', 'ua9', 'ua10', 'ua11', 'ua12',
  'ua13', 'ua14', 'ua15'}  -- codec.VIEW
local now = tonumber(ARGV[1])
local member = ARGV[2]
local interval = tonumber(ARGV[4])
local idle = tonumber(ARGV[5])

local view = redis.call('HMGET', KEYS[1], unpack(VIEW))
local stored = view[1]
if not stored then return false end

-- Compare every byte, whatever the first difference, so timing reveals nothing.
local given = ARGV[3]
if #given ~= #stored then return false end
local a, b, differ = {string.byte(given, 1, -1)}, {string.byte(stored, 1, -1)}, 0
for i = 1, #a do
  if a[i] ~= b[i] then differ = differ + 1 end
end
if differ ~= 0 then return false end

if not redis.call('ZSCORE', KEYS[2], member) or tonumber(view[2]) <= now then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], member)
  return false
end

if now - tonumber(view[3]) >= interval then
  local expires_at = tonumber(view[4] or view[2])
  if idle > 0 then expires_at = math.min(expires_at, now + idle) end
  -- Recording activity is a write: at maxmemory Redis refuses it, and the session must still
  -- validate, so a refused touch is skipped (pcall) rather than failing the script.
  local touched = redis.pcall('HSET', KEYS[1], 'a', ARGV[1], 'x', expires_at)
  if type(touched) ~= 'table' or not touched.err then
    redis.call('PEXPIREAT', KEYS[1], expires_at)
    redis.call('ZADD', KEYS[2], 'XX', expires_at, member)
    redis.call('PEXPIREAT', KEYS[2], expires_at, 'GT')
    view[2] = tostring(expires_at)
    view[3] = ARGV[1]
  end
end

view[1] = ''
return view
