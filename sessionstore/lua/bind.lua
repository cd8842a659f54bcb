-- bind.lua: bind a session to the public key of a verified DBSC registration (binding.py).
-- KEYS[1] session hash   KEYS[2] its bucket's `t` index (names the bucket)
-- ARGV[1] now_ms  ARGV[2] secret hash  ARGV[3] the registration challenge the proof signed
-- ARGV[4] events (lib.lua)  ARGV[5] the first refresh challenge  ARGV[6] its expiry (ms)
-- ARGV[7..] the key (a canonical JWK) in 64-byte chunks, stored as k0, k1, ...
-- returns 1 bound; 0 no live session with that secret; 2 the challenge is unknown, used or
--   expired; 3 the session is bound to another key already (nothing changes: the caller
--   records the failure).
-- The key and `b` are written in one step with the challenge taken, so a session is never
-- bound without its key, and a registration is never used twice.
local now = tonumber(ARGV[1])
local bucket = bucket_of(KEYS[2])
local view = redis.call('HMGET', KEYS[1], unpack(VIEW))
if not live_with(bucket, KEYS[1], view, ARGV[2], now) then return 0 end

local key = table.concat(ARGV, '', 7)
if view[AT.b] == '1' then
  local stored = {}
  for _, chunk in ipairs(redis.call('HMGET', KEYS[1], 'k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6',
      'k7', 'k8', 'k9', 'k10', 'k11', 'k12', 'k13', 'k14', 'k15')) do
    if not chunk then break end
    stored[#stored + 1] = chunk
  end
  if table.concat(stored) ~= key then return 3 end
end
if not take_challenge(KEYS[1], 'r' .. ARGV[3], now) then return 2 end
if view[AT.b] == '1' then return 2 end  -- bound with this key by an earlier registration

local fields = {'b', '1'}
for at = 7, #ARGV do
  fields[#fields + 1] = 'k' .. (at - 7)
  fields[#fields + 1] = ARGV[at]
end
redis.call('HSET', KEYS[1], unpack(fields))
drop_challenges(KEYS[1], 'r')
keep_challenge(KEYS[1], 'f' .. ARGV[5], ARGV[6])
events_from(ARGV[4])
local random = random_in(KEYS[1])
emit(bucket, EVENT.bound, entry_of(random, view[AT.c], view[AT.ip]), view[AT.u], ACTOR, '', now)
announce(KEYS[1])  -- near caches hold it unbound: drop it
return 1
